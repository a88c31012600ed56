"""The Train form's answers when a task does not fit the chosen data: the engine's reason
(:mod:`sslcore.pairing`) and one button per dataset that would fit; and, when a task narrows the encoders
(mae takes only a ViT), why the encoder list is short.

What fits is decided by ``sslcore.pairing`` only; this module just draws it.
"""
from __future__ import annotations

import streamlit as st

from sslcore.pairing import data_problem, datasets_for, encoders_for, encoders_of_kind, pairing_problem, tasks_of_kind

#: Fix buttons offered at most (the reason itself names a few more).
MAX_FIXES = 4
DATASET_KEY = "form.data.dataset"


def tasks_offered(dataset: str) -> list[str]:
    """The tasks the picker lists: every task for this kind of data, those that do not fit it included."""
    return tasks_of_kind(dataset)


def _choose(key: str, value: str) -> None:
    # A button callback runs before the next script run, the one moment a drawn widget's value may be set.
    st.session_state[key] = value


def explain_misfit(task: str, dataset: str) -> str | None:
    """If ``task`` does not fit ``dataset``: a warning saying why and buttons that switch to datasets that fit.
    Returns the reason (the form must not train), or None when the data fit."""
    problem = data_problem(task, dataset)
    if problem is None:
        return None
    st.warning(f"This task cannot train here: {problem}.", icon=":material/link_off:")
    choices = datasets_for(task)[:MAX_FIXES]
    for cell, choice in zip(st.columns(max(1, len(choices))), choices, strict=False):
        cell.button(f"Use dataset {choice}", key=f"fix.dataset.{choice}", on_click=_choose, args=(DATASET_KEY, choice),
                    icon=":material/build:")
    return problem


def explain_encoder_choice(task: str, dataset: str) -> None:
    """Under the encoder picker, when ``task`` leaves out encoders that take this data: which ones and why."""
    fits = encoders_for(task, dataset)
    left_out = [e for e in encoders_of_kind(dataset) if e not in fits]
    if fits and left_out:
        st.caption(f"Only encoders that fit are offered: {pairing_problem(task, left_out[0], dataset)}.")
