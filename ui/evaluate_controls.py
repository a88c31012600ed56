"""Starting, watching and cancelling evaluation jobs from the Evaluate page.

The jobs run in their own processes (:mod:`sslcore.runs.eval_manager`); this module only asks the shared
manager to start or cancel one and draws what ``<run>/eval_job.json`` says, as an ``st.fragment`` that
reruns every POLL_SECONDS while a job is active, so a refresh or a second tab shows the same progress.
"""
from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import streamlit as st

from sslcore.data import DatasetUnavailableError, dataset_info
from sslcore.evaluation.methods import available_methods, default_methods
from sslcore.evaluation.protocol import labelled_data, parse_budgets
from sslcore.evaluation.results import method_label
from sslcore.runs import ACTIVE_STATES, Run
from sslcore.runs.eval_manager import (
    DEFAULT_BUDGETS,
    MAX_REPEATS,
    STOP_FILE,
    EvalBusyError,
    EvalJobManager,
    EvalRequest,
)
from ui.datasets import load_config_split
from ui.evaluate_results import rows_so_far_table
from ui.live import STATE_COLORS, format_seconds
from ui.plain_text import escape_markdown
from ui.polling import polling_fragment
from ui.server import max_jobs, runs_dir

#: Small enough for a live demo: the supervised baseline's default step budget (see SupervisedBaseline).
DEFAULT_REPEATS = 3


@st.cache_resource(show_spinner=False)
def _manager(root: Path, max_concurrent: int) -> EvalJobManager:
    return EvalJobManager(root, max_concurrent=max_concurrent)


def eval_manager() -> EvalJobManager:
    """The evaluation job manager shared by every session of this server (keyed by the settings)."""
    return _manager(runs_dir(), max_jobs())


def budget_problem(run: Run, budgets: Sequence[int | str]) -> str | None:
    """Why ``budgets`` cannot be drawn from the run's training split (a class has too few images), or None."""
    data = run.config().data
    try:
        split = load_config_split(data)
    except (DatasetUnavailableError, OSError, ValueError) as error:
        return f"run {run.id}: its dataset cannot be loaded ({error})"
    try:
        labelled = labelled_data(split)
    except ValueError as error:  # the user's unlabelled images
        return f"run {run.id}: {error}"
    smallest = int(labelled.train.labels.bincount().min())
    too_big = [b for b in budgets if b != "all" and int(b) > smallest]
    if too_big:
        return (f"{too_big[0]} labels per class is more than {data.dataset} has: its smallest class has "
                f"{smallest} labelled training samples; use 'all' for every label")
    return None


def data_kind(runs: Sequence[Run]) -> str:
    """The kind of data ("image" or "table") of the first run whose dataset is still registered."""
    for run in runs:
        try:
            return str(dataset_info(run.config().data.dataset)["kind"])
        except ValueError:  # an unknown dataset or an old config: try the next run
            continue
    return "image"


def settings_form(runs: Sequence[Run]) -> EvalRequest | None:
    """Budgets, repeats and methods; returns the request when **Evaluate** is pressed and the input is valid.

    The methods offered are those for the runs' kind of data (tables: logistic regression and gradient-boosted
    trees on the raw columns instead of raw pixels).
    """
    kind = data_kind(runs)
    suffix = "" if kind == "image" else f".{kind}"  # another kind's methods: its own widget state
    with st.form(f"evaluate.settings{suffix}", border=True):
        left, right = st.columns([3, 1])
        text = left.text_input("Label budgets (labels per class)", ", ".join(str(b) for b in DEFAULT_BUDGETS),
                               help="Comma-separated whole numbers of labelled samples per class, and 'all'.",
                               key="evaluate.budgets")
        repeats = right.number_input("Repeats", 1, MAX_REPEATS, DEFAULT_REPEATS,
                                     help="Labelled subsets per budget, each drawn with its own seed.",
                                     key="evaluate.repeats")
        methods = st.multiselect("Methods", list(available_methods(kind)), list(default_methods(kind)),
                                 format_func=method_label, key=f"evaluate.methods{suffix}",
                                 help="Fine-tuning trains a network per subset, like the supervised baseline: "
                                      "it roughly doubles the time.")
        label = "Evaluate" if len(runs) == 1 else f"Evaluate {len(runs)} runs"
        pressed = st.form_submit_button(label, type="primary", icon=":material/query_stats:")
    if not pressed:
        return None
    try:
        budgets = parse_budgets(text)
        problem = next((p for p in (budget_problem(r, budgets) for r in runs) if p), None)
        if problem:
            raise ValueError(problem)
        return EvalRequest(tuple(budgets), int(repeats), 0, tuple(methods)).checked()
    except ValueError as error:
        st.error(escape_markdown(error), icon=":material/error:")
        return None


def start_jobs(runs: Sequence[Run], request: EvalRequest) -> None:
    """Queue an evaluation of each run; a run that cannot start says why (the others start anyway)."""
    for run in runs:
        try:
            eval_manager().start(run, request)
        except (EvalBusyError, FileNotFoundError, ValueError) as error:
            st.warning(f"{escape_markdown(run.id)}: {escape_markdown(error)}")


def jobs_panel(runs: Sequence[Run]) -> None:
    """Progress of each run's evaluation job; polls while one is active, then reruns the page once."""
    polling = bool(eval_manager().active(runs))
    paths = tuple(str(r.path) for r in runs)
    polling_fragment(_jobs_view, paths, polling, active=polling)


def _jobs_view(paths: tuple[str, ...], polling: bool) -> None:
    manager = eval_manager()
    jobs = [(Run(Path(p)), manager.status(Run(Path(p)))) for p in paths]
    if polling and not any(job.get("state") in ACTIVE_STATES for _, job in jobs):
        st.rerun()  # every job ended: stop polling and redraw the results with the new eval.json
    for run, job in jobs:
        if job:
            _job_row(run, job)


def progress_line(job: dict, state: str, now: float | None = None) -> str:
    """The progress bar's line: what the job does now and, once it runs, the time since it started (the
    supervised networks take a minute or more on CPUs without native bf16; the clock shows the job is alive)."""
    message = job.get("message") or state
    started = job.get("started")
    if state != "running" or not isinstance(started, (int, float)):
        return message
    elapsed = max(0.0, (time.time() if now is None else now) - started)
    return f"{message} · {format_seconds(elapsed)} elapsed"


def _job_row(run: Run, job: dict) -> None:
    state = job.get("state", "unknown")
    title, badge = st.columns([6, 1], vertical_alignment="center")
    name = escape_markdown(run.status().get("name", run.id))
    title.markdown(f"**Evaluation of {name}** · {escape_markdown(run.id)}")
    with badge:
        st.badge(state, color=STATE_COLORS.get(state, "gray"))
    if state in ACTIVE_STATES:
        st.progress(float(job.get("fraction") or 0.0), text=progress_line(job, state))
        so_far = rows_so_far_table(job)
        if so_far is not None:
            st.caption("Results so far, % test accuracy: the quick methods run first, the supervised networks "
                       "last; '…' fills in as each finishes.")
            st.dataframe(so_far, hide_index=True)
        if (run.path / STOP_FILE).exists():
            st.caption("Cancelling…")
        elif st.button("Cancel", key=f"evaluate.cancel.{run.id}", icon=":material/stop_circle:"):
            eval_manager().cancel(run)
            st.caption("Cancelling…")
    elif state == "failed":
        st.error(f"**The evaluation failed:** {escape_markdown(job.get('error') or 'no reason was recorded')}")
        if job.get("traceback"):
            with st.expander("Traceback"):
                st.code(job["traceback"], language="text")
    elif job.get("message"):
        st.caption(f"{state.capitalize()}: {escape_markdown(job['message'])}")
