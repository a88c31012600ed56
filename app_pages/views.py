"""Reconstructions & views: what the model makes of a fixed set of test images, epoch by epoch.

The run in ``?run=<id>`` (the latest run when none is chosen). The pictures are the trainer's own
snapshots (``<run>/snapshots/epoch_*.npz``), read from the run folder; nothing is computed here.
"""
import streamlit as st

from sslcore.engine.snapshots import panels_for
from ui.plain_text import escape_markdown
from ui.runs import RUN_PARAM, run_picker
from ui.runs_damaged import damaged_panel
from ui.server import job_manager
from ui.snapshot_view import snapshot_panel

GENERIC = "The pretext task's view of a fixed set of test images, saved by the trainer at every epoch."


manager = job_manager()
st.title("Reconstructions & views")
run = run_picker(manager.store, key="views.run_picker", newest_by_default=True)
if run is None:
    if manager.store.list():
        st.info("Choose a run above to see its test images epoch by epoch.")
    else:
        st.info("No runs yet. Start one on the Train page; its snapshots appear here while it trains.")
    st.page_link("app_pages/train.py", label="Train a model", icon=":material/model_training:")
    st.stop()
if damaged_panel(run, key="views"):
    st.stop()

# The raw JSON, not run.config(): an old run whose task was since renamed must still show its pictures.
recipe = run.config_dict()
task = recipe.get("task", {}).get("name", "?")
dataset = recipe.get("data", {}).get("dataset", "?")
st.markdown(f"**{escape_markdown(task)}** on **{escape_markdown(dataset)}** · {run.state}")
panels = panels_for(task)
st.markdown(panels.explanation if panels is not None and panels.explanation else GENERIC)
links = st.columns([1, 1, 3])
links[0].page_link("app_pages/train.py", label="Training curves", icon=":material/model_training:",
                   query_params={RUN_PARAM: run.id})
links[1].page_link("app_pages/embeddings.py", label="Embeddings", icon=":material/scatter_plot:",
                   query_params={RUN_PARAM: run.id})
snapshot_panel(run)
