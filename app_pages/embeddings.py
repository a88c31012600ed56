"""Embeddings: how a run's encoder arranges the images, beside raw pixels, at any epoch checkpoint.

Two maps side by side (encoder features | raw pixels of the same images), coloured by class, each with
its k-NN accuracy and silhouette. Hovering a point shows its image; clicking it (or typing an image id)
shows its nearest neighbours. For a table the raw map is of the standardised columns, hovering shows the
row's values and the neighbours are listed as rows. PCA is drawn at once; t-SNE runs in a background
process and is swapped in when ready. Everything is read from, and cached in, the run folder; nothing is trained here.
"""
from __future__ import annotations

import math

import numpy as np
import streamlit as st

from sslcore.data import DatasetUnavailableError
from sslcore.evaluation.embedding_quality import nearest_neighbours
from sslcore.evaluation.embeddings import PIXELS, Source, Split, available_epochs
from sslcore.runs import Run
from ui import embedding_data as data
from ui.embedding_data import METHOD_NAMES, MapView, Points
from ui.embedding_map import MapPanel, embedding_map, map_args, map_figure, new_click
from ui.embedding_neighbours import K, Strip, neighbour_rows, neighbour_strip
from ui.live import sample_unit
from ui.plain_text import escape_markdown
from ui.runs import run_picker
from ui.runs_damaged import damaged_panel
from ui.server import job_manager

MAP_KEY = "emb.map"
def map_knn_label(unit: str = "images") -> str:
    """This page's k-NN figure: among the shown images (or rows; leave-one-out), unlike the online monitor's
    "k-NN (last epoch)"."""
    return f"k-NN among shown {unit}"
SEEN_CLICK_KEY = "emb.seen_click"

manager = job_manager()
st.title("Embeddings")


def choose_run() -> Run:
    """The run in ``?run=``; with none asked for, the newest run (written into the URL, so links keep it)."""
    run = run_picker(manager.store, newest_by_default=True)
    if run is not None:
        return run
    runs = manager.store.list()
    st.info("Choose a run above." if runs else "No runs yet: train one on the **Train** page, then come back "
            "here to see how its encoder arranges the images.")
    st.stop()


def controls(run: Run, epochs: list[int], unit: str) -> tuple[int, Split, str]:
    epoch_box, split_box, method_box = st.columns([2, 1, 1])
    epoch = epoch_box.selectbox("Epoch checkpoint", epochs, index=len(epochs) - 1, key=f"emb.epoch.{run.id}",
                                format_func=lambda e: f"epoch {e}" + (" (untrained)" if e == 0 else ""),
                                help="The encoder's weights saved after this epoch; epoch 0 is the untrained encoder.")
    split = split_box.radio(unit.capitalize(), ["test", "train"], horizontal=True, key="emb.split",
                            help=f"Test {unit} were never trained on. At most "
                                 f"{data.MAX_POINTS:,} are shown (a fixed sample keeping every class's share).")
    method = method_box.radio("Map", list(METHOD_NAMES), format_func=METHOD_NAMES.get, horizontal=True,
                              key="emb.method", help="PCA is drawn at once. t-SNE keeps neighbours together "
                                                     "(better clusters) and is computed in the background.")
    # Never None: each widget has options and a default (Streamlit's types allow None for an empty one)
    assert epoch is not None and split in ("test", "train") and method is not None
    return epoch, split, method


def query_position(key: str, ids: np.ndarray) -> int | None:
    """The chosen point's position: a new click on a map wins, else the image id in the number box."""
    clicked = st.session_state.get(MAP_KEY)
    position = new_click(clicked, st.session_state.get(SEEN_CLICK_KEY), len(ids))
    if isinstance(clicked, dict):
        st.session_state[SEEN_CLICK_KEY] = clicked.get("nonce")
    if position is not None:
        st.session_state[key] = int(ids[position])  # before the number box is drawn: it shows the click
    chosen = st.session_state.setdefault(key, int(ids[0]))
    found = np.flatnonzero(ids == chosen)
    return int(found[0]) if len(found) else None


def metric_tiles(quality: dict[str, float], baseline: dict[str, float] | None, raw: str = "pixels",
                 unit: str = "images") -> None:
    """k-NN accuracy and silhouette; with ``baseline`` (raw pixels or columns), their change against it."""
    knn, silhouette = quality["knn_acc"], quality["silhouette"]
    knn_delta = silhouette_delta = None
    if baseline is not None:
        knn_delta = f"{(knn - baseline['knn_acc']) * 100:+.1f} pts vs {raw}"
        if math.isfinite(silhouette) and math.isfinite(baseline["silhouette"]):
            silhouette_delta = f"{silhouette - baseline['silhouette']:+.3f} vs {raw}"
    knn_box, silhouette_box = st.columns(2)
    one = unit.removesuffix("s")
    knn_box.metric(map_knn_label(unit), f"{knn:.1%}", delta=knn_delta,
                   help=f"Each shown {one}'s label predicted by a vote of its 20 nearest other {unit} (cosine "
                        "similarity): how well a distance in this space matches the classes. Chance = 1 / classes. "
                        f"Not the online k-NN monitor of the Train and Runs pages (test {unit} voted on by the "
                        f"training {unit}): a different measure, so a different name.")
    silhouette_box.metric("Silhouette", "–" if not math.isfinite(silhouette) else f"{silhouette:.3f}",
                          delta=silhouette_delta,
                          help=f"Mean cosine silhouette of the classes as clusters, from -1 to 1: above 0, {unit} "
                               "are on average closer to their own class than to the nearest other class.")


def panel_title(source: Source, view: MapView, table: bool = False) -> str:
    raw = "Raw columns (standardised)" if table else "Raw pixels"
    what = raw if source == PIXELS else f"Encoder features · {data.source_label(source)}"
    shown = METHOD_NAMES[view.method]
    if view.tsne == "running" and view.method != "tsne":
        shown += " (t-SNE computing…)"
    return f"{what} · {shown}"


def failure_note(run: Run, source: Source, split: Split, view: MapView) -> None:
    if view.error is None:
        return
    st.error(f"The t-SNE map of {data.source_label(source)} failed: {escape_markdown(view.error)}. "
             "The PCA map is shown instead.")
    if st.button("Retry t-SNE", key=f"emb.retry.{source}", icon=":material/refresh:"):
        data.retry_tsne(run, source, split)
        st.rerun()


def draw_strip(title: str, strip: Strip, labelled: bool) -> None:
    shared = f" · {strip.same_label} of {len(strip.positions) - 1} share its label" if labelled else ""
    st.markdown(f"**{title}**{shared}")
    st.image(strip.pictures, caption=strip.captions, output_format="PNG")  # lossless: JPEG smears small digits


run = choose_run()
if damaged_panel(run, key="emb"):
    st.stop()
epochs = available_epochs(run)
if not epochs:
    st.info("This run has no encoder checkpoints yet: the first one is saved before training starts. "
            "Come back once it is running.")
    st.stop()
epoch, split, method = controls(run, epochs, sample_unit(run.status()))
sources: list[Source] = [epoch, PIXELS]
try:
    waiting = data.first_read_jobs(run, epoch, split)
except (DatasetUnavailableError, FileNotFoundError, RuntimeError, ValueError) as error:
    st.error(f"Could not read the embeddings of {data.source_label(epoch)}: {escape_markdown(error)}")
    st.stop()
if waiting:  # a big split's first visit: read in the background, so no page run blocks for seconds
    st.info(f"Reading the {split} {sample_unit(run.status())} the maps show ({data.MAX_POINTS:,}, a sample of the "
            "split) for the first "
            f"time, in the background: encoder features at epoch {epoch}, PCA maps, thumbnails and map quality. "
            "The maps appear here when they are ready (a few seconds); later visits read them at once.",
            icon=":material/hourglass_top:")
    data.first_read_watch(run, epoch, split)
    st.stop()
try:
    with st.spinner(f"Reading the encoder's features at epoch {epoch}…"):
        points: Points = data.load_points(run, epoch, split)
        views = [data.map_view(run, s, split, method) for s in sources]
        names = data.class_names(run)
        table = points.table
        thumbs = [""] * len(points.ids) if table else data.thumbnails(run, split)
        texts = data.row_texts(run, split) if table else []
        columns = data.column_names(run) if table else ()
except (DatasetUnavailableError, FileNotFoundError, RuntimeError, ValueError) as error:
    st.error(f"Could not read the embeddings of {data.source_label(epoch)}: {escape_markdown(error)}")
    st.stop()

unit, raw_name = ("rows", "raw columns") if table else ("images", "pixels")
query_key = f"emb.query.{run.id}.{split}"
query = query_position(query_key, points.ids)
strip = None
if query is not None and not table:
    strip = neighbour_strip(points.features, points.images, points.labels, names, query)
    ringed = strip.positions[1:]
elif query is not None:  # a table: the neighbours are listed as rows below, and ringed on the maps
    ringed = nearest_neighbours(points.features, query, K)[0].tolist()
else:
    ringed = []

tiles = []
raw_title = "Raw columns, standardised (no learning)" if table else "Raw pixels (no learning)"
for column, source, view in zip(st.columns(2, gap="large"), sources, views, strict=True):
    with column:
        st.markdown(f"##### {'Self-supervised features' if source != PIXELS else raw_title}")
        tiles.append(st.empty())  # filled after the maps are drawn: the k-NN figures take ~1 s on 4,000 points
        failure_note(run, source, split, view)
if method == "tsne":
    data.tsne_watch(run, sources, split, [v.tsne for v in views])

panels = [MapPanel(name, map_figure(view.coords, points.labels, names, title=panel_title(source, view, table),
                                    revision=f"{run.id}:{source}:{split}:{view.method}", query=query,
                                    neighbours=ringed))
          for name, source, view in zip(("features", "pixels"), sources, views, strict=True)]
files = None if table else data.file_names(run, split, points.ids)
embedding_map(map_args(panels, thumbs, points.ids, split, files, texts), key=MAP_KEY)
labelled = bool((points.labels >= 0).any())
coloured = "coloured by class" if labelled else "not coloured by class: the dataset has no labels"
shown = "its values" if table else "its image"
st.caption(f"{len(points.ids):,} {split} {unit}, {coloured}. Hover a point to see {shown}; click it to "
           "see its nearest neighbours (ringed on both maps).")

if labelled:
    with st.spinner("Measuring how well the classes separate…"):
        qualities = [data.quality(run, s, split) for s in sources]
    for tile, source, quality in zip(tiles, sources, qualities, strict=True):
        with tile.container():
            metric_tiles(quality, None if source == PIXELS else qualities[1], raw_name, unit)
else:
    tiles[0].info(f"No k-NN accuracy or silhouette: these {unit} have no labels to check the map against. The "
                  "map and the nearest neighbours still show what the encoder puts together; add labels on the "
                  "**Data** page to measure it.", icon=":material/label_off:")

st.subheader("Nearest neighbours")
id_box, note = st.columns([1, 3], vertical_alignment="bottom")
thing = "Row" if table else "Image"
id_box.number_input(f"{thing} id", min_value=0, max_value=int(points.ids.max()), step=1, key=query_key,
                    help=f"The {thing.lower()}'s index in the {split} split, as shown when you hover it.")
if query is None:
    note.warning(f"{thing} #{st.session_state[query_key]} is not among the {len(points.ids):,} {unit} shown "
                 "(a sample of the split); choose another id or click a point.")
elif table:
    note.caption(f"The query row, then its {K} nearest neighbours by cosine distance (1 − cosine similarity): in "
                 "the encoder's feature space, and, for comparison, among the standardised raw columns. Values "
                 "as fed to the model.")
    for title, space in (("In the encoder's feature space", points.features), ("Among the raw columns", points.pixels)):
        frame, same = neighbour_rows(space, points.images, points.labels, names, columns, points.ids, query)
        st.markdown(f"**{title}**" + (f" · {same} of {K} share its label" if labelled else ""))
        st.dataframe(frame.style.format(precision=3, subset=list(frame.columns[2:])), hide_index=True)
elif strip is not None:  # always, for images: drawn above where the query is known
    note.caption(f"The query image, then its {K} nearest neighbours by cosine distance (d = 1 − cosine "
                 "similarity): in the encoder's feature space, and, for comparison, in raw pixel space.")
    draw_strip("In the encoder's feature space", strip, labelled)
    draw_strip("In raw pixel space", neighbour_strip(points.pixels, points.images, points.labels, names, query),
               labelled)
