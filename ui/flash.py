"""One-shot messages: a button's callback leaves one, the next page run shows it once.

A callback runs before the page is drawn and cannot draw into it, so what an action did (a run deleted, a
dataset removed) is kept in the session and shown at the top of the page run that follows.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import streamlit as st

Kind = Literal["success", "error"]


@dataclass(frozen=True)
class Flash:
    """The message slot under session key ``key``; its text is Markdown (escape what a user typed)."""

    key: str

    def set(self, kind: Kind, markdown: str) -> None:
        """Keep ``markdown`` to show, as a success or an error, at the top of the next page run."""
        st.session_state[self.key] = (kind, markdown)

    def show(self) -> None:
        """Show the kept message, once; nothing if there is none."""
        message = st.session_state.pop(self.key, None)
        if message:
            kind, text = message
            (st.success if kind == "success" else st.error)(text)
