"""Load what the Train page needs (torch, the engine, the default dataset) in the background, once.

The home page needs none of it and is interactive in a few seconds; the Train page needs all of it,
several seconds of imports and parsing on a cold server. Starting that work as soon as the home page
has been drawn means a person who clicks Quick demo or opens Train rarely waits for it.
"""
from __future__ import annotations

import logging
import threading

import streamlit as st

from ui.server import data_root

log = logging.getLogger(__name__)


def _warm_up(root: str) -> None:
    try:
        import ui.datasets  # noqa: F401  torch, torchvision, the tasks, the encoders
        from sslcore.config import default_config
        from sslcore.data import load_dataset

        load_dataset(default_config().data.dataset, root=root)  # sslcore caches it in-process
    except Exception:  # noqa: BLE001 - the Train page reports the same problem where a person sees it
        log.warning("background warm-up failed; the Train page will load on its first visit", exc_info=True)


@st.cache_resource(show_spinner=False)
def warm_up_in_background() -> threading.Thread:
    """Start the warm-up thread (once per server process; later calls return the same thread)."""
    # Not a daemon: the interpreter waits the few seconds it takes at exit. A daemon thread still inside
    # torch's import when the process exits (a short script, a test run) aborts it in C++ teardown.
    thread = threading.Thread(target=_warm_up, args=(data_root(),), name="ssl-studio-warmup", daemon=False)
    thread.start()
    return thread
