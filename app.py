"""SSL Studio: ``streamlit run app.py``. Page config and navigation only; each page lives in ``app_pages/``.

To add a page, write ``app_pages/<name>.py`` and add one ``st.Page`` line to PAGES. Pages that show a run
read it from ``?run=<id>`` (see ``ui.runs``), so links between pages carry the run along.

Serve it with ``streamlit run serve.py``: the same app, plus one line in its HTML page that spares the browser
two failed requests whenever a page URL such as ``/train`` is opened directly (see ``ui/base_url.py``).

The folder is deliberately not called ``pages/``: while a server has not yet run ``st.navigation``,
Streamlit treats a ``pages/`` folder as the old multipage layout, so the first request after a start
(say, reloading ``/train?run=...``) would run that page file alone, without this entry point.
"""
from pathlib import Path

import streamlit as st

from ui.heap import settle_heap

# A local file, not a ":material/...:" icon: Streamlit turns those into a favicon fetched from fonts.gstatic.com,
# and the app must need nothing from the internet.
ICON = Path(__file__).resolve().parent / "ui" / "assets" / "icon.png"
st.set_page_config(page_title="SSL Studio", page_icon=str(ICON), layout="wide")

PAGES = [
    st.Page("app_pages/home.py", title="Home", icon=":material/home:", default=True),
    st.Page("app_pages/data.py", title="Data", icon=":material/photo_library:", url_path="data"),
    st.Page("app_pages/train.py", title="Train", icon=":material/model_training:", url_path="train"),
    st.Page("app_pages/views.py", title="Reconstructions & views", icon=":material/grid_view:", url_path="views"),
    st.Page("app_pages/embeddings.py", title="Embeddings", icon=":material/scatter_plot:", url_path="embeddings"),
    st.Page("app_pages/evaluate.py", title="Evaluate", icon=":material/query_stats:", url_path="evaluate"),
    st.Page("app_pages/runs.py", title="Runs", icon=":material/history:", url_path="runs"),
]

st.navigation(PAGES).run()
settle_heap()  # after a page's first imports (torch): keeps the gc.collect() after every rerun cheap
