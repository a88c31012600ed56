"""``streamlit run serve.py``: the dashboard (``app.py``) served with one fix for direct page loads.

Opening a page URL such as ``/train?run=...`` directly makes Streamlit's frontend probe
``/train/_stcore/health`` before ``/_stcore/health`` (two 404s in the browser console on every reload);
:class:`ui.base_url.PinnedBaseUrl` tells it where the server's root is instead. ``streamlit run app.py``
still works, with those two failed requests. Flags and ``.streamlit/config.toml`` apply as usual.
"""
import streamlit as st
from starlette.middleware import Middleware

from ui.base_url import PinnedBaseUrl

app = st.App("app.py", middleware=[Middleware(PinnedBaseUrl)])
