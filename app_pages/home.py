"""Home: what self-supervised learning does here, in three steps; the recent runs; a one-click demo."""
import streamlit as st

from sslcore.recipes import QUICK_DEMO, quick_demo_config
from sslcore.runs import ACTIVE_STATES
from sslcore.runs.history import last_duration
from ui import runs_table
from ui.live import format_seconds
from ui.plain_text import counted
from ui.runs import RUN_PARAM
from ui.runs_damaged import damaged_notice
from ui.server import job_manager, submit_or_explain
from ui.warmup import warm_up_in_background

RECENT_RUNS = 10

manager = job_manager()

st.title("SSL Studio")
st.markdown("Self-supervised learning you can watch: teach a network about images **without labels**, "
            "see what it learned, then measure how little labelled data it needs afterwards.")

steps = st.columns(3)
with steps[0].container(border=True):
    st.markdown("##### 1 · Pretext task")
    st.markdown("Make a label out of the data itself: hide patches and ask for them back, rotate an image "
                "and ask by how much, corrupt it and ask for the clean one, or crop two views of it and ask "
                "which views belong together.")
with steps[1].container(border=True):
    st.markdown("##### 2 · Feature learning")
    st.markdown("Train an encoder to solve that task on unlabelled images. To succeed it has to notice "
                "strokes, shapes and parts: its internal features become a description of the image.")
with steps[2].container(border=True):
    st.markdown("##### 3 · Transfer")
    st.markdown("Freeze the encoder and reuse its features for a real (downstream) task, e.g. a linear "
                "classifier trained on a few labels. During training, a k-NN classifier on the features "
                "already shows how useful they are.")


def demo_duration() -> str:
    """How long the demo takes here: the last measured demo on this machine, or where the estimate will appear."""
    measured = last_duration(manager.store, quick_demo_config())
    busy = sum(r.state in ACTIVE_STATES for r in manager.store.list())
    sharing = f" {busy} run{'s are' if busy != 1 else ' is'} training now, so expect longer." if busy else ""
    if measured is None:
        return ("How long depends on this computer and what else it runs: once it starts, the Train page shows "
                "an estimate from the measured speed, updated as it trains." + sharing)
    return f"The last one on this machine took **{format_seconds(measured.seconds)}** (min:s)." + sharing


demo, train = st.columns([1, 5], vertical_alignment="center")
if demo.button("Quick demo", type="primary", icon=":material/play_arrow:"):
    run = submit_or_explain(quick_demo_config(), name="Quick demo")
    if run is not None:
        st.switch_page("app_pages/train.py", query_params={RUN_PARAM: run.id})

train.markdown(f"The quick demo trains **{QUICK_DEMO['task.name']}** on **{QUICK_DEMO['data.dataset']}** with a "
               f"small **{QUICK_DEMO['encoder.name']}** for {QUICK_DEMO['train.epochs']} epochs. {demo_duration()} "
               "Or choose everything yourself on the Train page.")
st.page_link("app_pages/train.py", label="Configure a run on the Train page", icon=":material/tune:")

st.subheader("Recent runs")
runs = manager.store.list()
damaged_notice(manager.store, key="home", runs=runs)
if not runs:
    st.info("No runs yet: start the quick demo, or train one from the Train page.")
else:
    recent_runs = runs[:RECENT_RUNS]
    recent = runs_table.runs_frame(recent_runs, columns=runs_table.RECENT_COLUMNS)
    active = sum(r.state in ACTIVE_STATES for r in runs)
    st.caption(f"{counted(len(runs), 'run')} in `{manager.store.root}` · {active} queued or running "
               f"(at most {manager.max_concurrent} train at once)")
    st.dataframe(recent, hide_index=True, width="stretch", placeholder=runs_table.MISSING,
                 column_config=runs_table.column_config(r.id for r in recent_runs))

warm_up_in_background()  # last: the page above is already drawn
