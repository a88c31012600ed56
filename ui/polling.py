"""Polling fragments: the parts of a page that redraw themselves on a timer while something they show can
change on disk (a run training, an evaluation or a t-SNE job running), and only then.

One helper and one interval for every page: a fragment that polls costs a few file stats per tick, so the
interval trades freshness against the server's CPU while people watch (``benchmarks/bench_app.py``).
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import streamlit as st

#: Seconds between the redraws of a polling fragment.
POLL_SECONDS = 1.5
#: ... while a just-started run has not logged its first step: the first loss point is the click's first
#: feedback, so it is looked for more often (for a few seconds; then the page goes back to POLL_SECONDS).
FIRST_POINT_POLL_SECONDS = 0.4
#: For at most this long after the run was created: a run queued behind others is watched at the usual pace.
FIRST_POINT_WINDOW_SECONDS = 30.0


def polling_fragment(draw: Callable[..., None], *args: Any, active: bool, every: float | None = None) -> None:
    """Call ``draw(*args)`` as an ``st.fragment`` that reruns every ``every`` seconds (POLL_SECONDS unless
    given) while ``active``, and not at all otherwise.

    Whether to poll is decided at each full page run: when a polling fragment sees what it watches end, it
    asks for one full rerun (``st.rerun()``), which registers the fragment again without a timer (Streamlit
    drops the old one).
    """
    st.fragment(run_every=(every or POLL_SECONDS) if active else None)(draw)(*args)
