"""Train: choose data, a pretext task, an encoder and hyperparameters; start a run; watch it live.

Left: the new-run form, generated from the config dataclasses. Right: the run in ``?run=<id>``, redrawn
from its folder while it trains in its own process.
"""
from collections.abc import Callable

import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from sslcore.config import (
    ConfigError,
    DataConfig,
    EncoderConfig,
    RunConfig,
    TrainConfig,
    default_config,
    task_train_defaults,
)
from sslcore.data import DATASETS, DatasetSplit, DatasetUnavailableError
from sslcore.models import ENCODERS
from sslcore.pairing import encoders_for, tasks_for
from sslcore.runs import RunNotFoundError
from sslcore.tasks import TASKS
from sslcore.userdata.discovery import refresh_user_datasets
from ui import charts, datasets, forms, table_preview, train_pairing
from ui.images import image_grid
from ui.live import run_panel
from ui.plain_text import escape_markdown
from ui.runs import FROM_PARAM, find_run, run_picker, show_run
from ui.runs_damaged import damaged_notice
from ui.server import data_root, job_manager, submit_or_explain

PREVIEW_IMAGES = 6
#: Session key: the id of the run this session's Train click just started (confirmed once, at the button).
STARTED_KEY = "train.started"

manager = job_manager()
DEFAULTS = default_config()  # the engine's default recipe picks the initial dataset, task and encoder
st.title("Train")


def prefill_from_run() -> None:
    """``?from=<run id>`` ("Edit and train again"): the form starts from that run's config.

    The widgets' session state is seeded once per id, before they are drawn, so edits made afterwards stay.
    """
    source = st.query_params.get(FROM_PARAM)
    if not source:
        st.session_state.pop(forms.PREFILLED_KEY, None)
        return
    try:
        run = find_run(manager.store, source)
        config = run.config()
    except (RunNotFoundError, ConfigError) as error:
        st.warning(f"The form cannot start from run {escape_markdown(repr(source))}: {escape_markdown(error)}")
        return
    if st.session_state.get(forms.PREFILLED_KEY) != source:
        state = forms.form_state(config)
        refresh_user_datasets(data_root())
        if config.data.dataset not in DATASETS:  # a dataset of the user's that is not here (removed since)
            state.pop("form.data.dataset", None)
            st.warning(f"Dataset {config.data.dataset} of that run is not here; add it on the Data page or pick "
                       "another one.")
        st.session_state.update(state)
        st.session_state[forms.PREFILLED_KEY] = source
    name = escape_markdown(run.status().get("name", run.id))
    st.info(f"The form starts from the config of **{name}** ({escape_markdown(run.id)}): change "
            "what you like and press **Train** for a new run.", icon=":material/content_copy:")


prefill_from_run()
form_column, run_column = st.columns([4, 5], gap="large")


def pick(label: str, names: list[str], default: str, key: str, describe: Callable[[str], str]) -> str:
    """A select box over registry names, showing each one's description.

    ``names`` are those that fit the choices above it; a remembered choice that no longer fits (another
    kind of data was picked) gives way to ``default``, or to the first name when the default does not fit.
    """
    if st.session_state.get(key) not in names:
        st.session_state.pop(key, None)
    index = names.index(default) if default in names else 0
    chosen = st.selectbox(label, names, index=index, key=key, format_func=lambda name: f"{name} — {describe(name)}")
    assert chosen is not None  # every data kind has tasks and encoders that fit it, so ``names`` is never empty
    return chosen


def other_datasets_options(name: str) -> set[str]:
    """Data fields that are options of datasets other than ``name``: the form hides them."""
    return {o for e in DATASETS for o in e.obj.options} - set(DATASETS.get(name).options)


def data_section() -> tuple[dict, DatasetSplit | None]:
    st.subheader("1 · Data")
    refresh_user_datasets(data_root())  # datasets added on the Data page or with `sslcore data add`
    name = pick("Dataset", DATASETS.names(), DEFAULTS.data.dataset, "form.data.dataset",
                lambda n: DATASETS.entry(n).description)
    values = forms.section_form(DataConfig, "data", key_prefix="form.data",
                                exclude=("dataset", "root", *other_datasets_options(name)),
                                advanced_label="Split and download")
    values.update(dataset=name, root=data_root())
    try:
        split = datasets.load_split(name, values["root"], values["test_fraction"], values["split_seed"],
                                    values["train_limit"], datasets.dataset_options(values))
    except DatasetUnavailableError as error:
        (st.info if values["download"] else st.warning)(str(error))
        return values, None
    if split.kind == "table":
        table_preview.draw_table_data(split)
        return values, split
    facts = datasets.dataset_facts(name, split)
    c, h, w = facts.image_shape
    classes = f"**{len(facts.class_names)}** classes" if facts.class_names else "**no labels**"
    st.markdown(f"**{facts.train_size:,}** training + **{facts.test_size:,}** test images · "
                f"{classes} · images **{c}×{h}×{w}** ({'colour' if c == 3 else 'grey'}, "
                f"channels × height × width)" + (" · official split" if facts.official_split else ""))
    # Class names may come from the user's folders, and image captions render Markdown: escaped, shown as typed.
    caption = ("Test images, one class per column: " + escape_markdown(", ".join(facts.class_names[:10]))
               if facts.class_names else
               "Test images. Without labels the run trains as usual; the online k-NN monitor and the Evaluate "
               "page need labels (add some on the Data page).")
    st.image(datasets.sample_grid(name, values["root"]), caption=caption,
             output_format="PNG")  # lossless: JPEG smears 8x8 and 28x28 digits
    return values, split


def task_section(dataset: str) -> tuple[str, dict, DeltaGenerator, str | None]:
    """The task picker and fields. Tasks for this kind of data that do not fit this dataset (colour-only ones
    on grey digits) are listed too, marked; picking one says why and offers datasets that fit."""
    st.subheader("2 · Pretext task")
    fits = set(tasks_for(dataset))
    name = pick("Pretext task", train_pairing.tasks_offered(dataset), DEFAULTS.task.name, "form.task.name",
                lambda n: ("" if n in fits else f"not for {dataset}: ") + TASKS.entry(n).description)
    misfit = train_pairing.explain_misfit(name, dataset)
    st.markdown(datasets.task_explanation(name))
    values = forms.section_form(TASKS.get(name).Config, "task", key_prefix=f"form.task.{name}")
    return name, values, st.container(), misfit  # the preview is drawn once the whole config is known


def encoder_section(task: str, dataset: str) -> dict:
    st.subheader("3 · Encoder")
    name = pick("Encoder", encoders_for(task, dataset), DEFAULTS.encoder.name, "form.encoder.name",
                lambda n: ENCODERS.entry(n).description)
    train_pairing.explain_encoder_choice(task, dataset)
    unused = [f for f in DEFAULTS.encoder.options() if f not in ENCODERS.get(name).config_fields]  # a CNN's depth
    return {"name": name, **forms.section_form(EncoderConfig, "encoder", key_prefix="form.encoder",
                                               exclude=("name", *unused))}


def training_section(task_name: str) -> dict:
    """The training fields, starting from ``task_name``'s own defaults where its recipe differs (SimSiam's lr)."""
    st.subheader("4 · Training")
    return forms.section_form(TrainConfig, "train", key_prefix="form.train", defaults=task_train_defaults(task_name),
                              key_of=lambda field: forms.train_key(task_name, field))


def draw_preview(slot: DeltaGenerator, config: RunConfig, split: DatasetSplit) -> None:
    """What the model will be shown for a few test samples; raises the task's ConfigError if it refuses."""
    seed = st.session_state.get("preview_seed", 0)
    with slot:
        if split.kind == "table":
            indices, rows = table_preview.task_rows(config.to_json(), PREVIEW_IMAGES, seed)
            st.markdown("**What the model sees** (the same test rows in every table; changed cells highlighted)")
            table_preview.draw_task_rows(split.as_tables()[1], indices, rows)
        else:
            views = datasets.task_views(config.to_json(), PREVIEW_IMAGES, seed)
            st.markdown("**What the model sees** (the same test images in every row)")
            for view_name, images in views.items():
                label, picture = st.columns([1, 6], vertical_alignment="center")
                label.caption(view_name)
                picture.image(image_grid(images, columns=PREVIEW_IMAGES), output_format="PNG")
        if st.button("New random views", icon=":material/casino:"):
            st.session_state["preview_seed"] = seed + 1
            st.rerun()


def processes_field() -> int:
    """How many processes train the run (DistributedDataParallel); more than one needs spare cores or GPUs."""
    # No min/max on the box: a bounded box silently keeps its last valid value; processes_problem refuses instead.
    return int(st.number_input(
        "Processes", value=1, step=1, key="form.processes",
        help="Train this run on several processes at once (PyTorch DistributedDataParallel, one GPU or a share of "
             "the cores each); each takes one of the job slots. The batch size is the total over all processes."))


def start_run(config: RunConfig, processes: int) -> None:
    run = submit_or_explain(config, processes=processes)
    if run is None:
        return
    st.query_params.pop(FROM_PARAM, None)  # the form has done its job; a reload must not refill it
    show_run(run.id)
    st.session_state[STARTED_KEY] = run.id
    st.rerun()  # redraw with the new run selected on the right


def confirm_start() -> None:
    """Right under the Train button: the run just started, and where it is shown (the run column may be
    off-screen: below the form on a narrow window, or scrolled away)."""
    started = st.session_state.pop(STARTED_KEY, None)
    if started is not None:
        st.success(f"Started run `{started}` in its own process. It is shown under **Run** "
                   "([go there](#run)): to the right of this form, or below it on a narrow window.",
                   icon=":material/check_circle:")


with form_column:
    data_values, split = data_section()
    task_name, task_values, preview_slot, misfit = task_section(data_values["dataset"])
    encoder_values = encoder_section(task_name, data_values["dataset"])
    train_values = training_section(task_name)
    processes = processes_field()
    problem = None
    try:
        config = forms.assemble_config(task_name, {"data": data_values, "encoder": encoder_values,
                                                   "task": task_values, "train": train_values})
        if split is not None:
            draw_preview(preview_slot, config, split)
            steps, lrs, per_epoch = forms.planned_lr(config, len(split.train))
            st.plotly_chart(charts.schedule_figure(steps, lrs, per_epoch), config={"displaylogo": False})
    except ConfigError as error:
        problem = str(error)
    else:
        problem = manager.processes_problem(processes, config.train.batch_size)
    if problem and misfit is None:  # a misfit is already explained under the task picker, with its fixes
        st.error(problem, icon=":material/error:")
    ready = problem is None and (split is not None or data_values["download"])
    if st.button("Train", type="primary", icon=":material/rocket_launch:", disabled=not ready):
        start_run(config, processes)
    confirm_start()

with run_column:
    st.subheader("Run", anchor="run")
    damaged_notice(manager.store, key="train")
    in_progress = manager.active()  # oldest first: a fresh tab shows the newest of them
    run = run_picker(manager.store, default=in_progress[-1].id if in_progress else None)
    if len(in_progress) > 1:
        st.caption(f"{len(in_progress)} runs are queued or training: choose one above to watch it.")
    if run is None:
        st.info("Press **Train** to start a run; it trains in its own process and appears here live. "
                "You can leave this page meanwhile and come back.")
    else:
        run_panel(run)
