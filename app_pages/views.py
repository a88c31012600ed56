"""Reconstructions & views: what the model makes of a fixed set of test images, epoch by epoch.

The run in ``?run=<id>`` (the latest run when none is chosen). The pictures are the trainer's own
snapshots (``<run>/snapshots/epoch_*.npz``), read from the run folder; nothing is computed here.
"""
import streamlit as st

from sslcore.runs.files import read_json
from ui.jobs import job_manager
from ui.runs import RUN_PARAM, run_picker
from ui.snapshot_view import snapshot_panel

#: What the viewer is looking at, per pretext task.
EXPLANATIONS = {
    "autoencoder": "The encoder squeezes each test image into a short feature vector; a decoder has to redraw the "
                   "image from that alone. At epoch 0 (untrained) the redrawing is a blur; as the features learn "
                   "what matters (strokes, shapes), the reconstructions sharpen and the error falls.",
    "denoising_autoencoder": "The model sees a noisy copy of each test image and must return the clean one. "
                             "Noise cannot be undone by copying pixels: the model has to know what digits look "
                             "like. The error compares the output with the clean image.",
    "masked_autoencoder": "Square patches of each test image are hidden (grey in the masked input); the model "
                          "must fill them in from the visible rest. The reconstruction shows the visible pixels "
                          "as given and the hidden ones as the model's guess; the error counts only the hidden "
                          "pixels.",
    "rotation": "Each test image is turned by a random 0°, 90°, 180° or 270°, and the model says which. It can "
                "only be right by knowing which way up a thing is drawn, so its features must capture shape. "
                "Under each image: the predicted angle, how sure the model is, and whether it was right.",
    "simclr": "Two random augmentations (crop, small rotation, brightness and contrast jitter) of the same test "
              "image. The model is trained to give both views the same features and other images different "
              "ones, so these pairs show what *the same thing* means to it. Similarity is the cosine between "
              "the two views' encoder features (1 = identical). Even an untrained network finds two crops of one "
              "image fairly similar; what training adds is that *different* images end up apart (see Embeddings).",
}
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

# The raw JSON, not run.config(): an old run whose task was since renamed must still show its pictures.
recipe = read_json(run.path / "config.json", default={})
task = recipe.get("task", {}).get("name", "?")
st.markdown(f"**{task}** on **{recipe.get('data', {}).get('dataset', '?')}** · {run.state}")
st.markdown(EXPLANATIONS.get(task, GENERIC))
links = st.columns([1, 1, 3])
links[0].page_link("app_pages/train.py", label="Training curves", icon=":material/model_training:",
                   query_params={RUN_PARAM: run.id})
links[1].page_link("app_pages/embeddings.py", label="Embeddings", icon=":material/scatter_plot:",
                   query_params={RUN_PARAM: run.id})
snapshot_panel(run)
