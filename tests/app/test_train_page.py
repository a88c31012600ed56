"""AppTest: the Train page's generated form, the task preview, validation, and starting a run."""
from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from sslcore.config import ConfigError, TaskConfig, TrainConfig, default_config, field_specs, param
from sslcore.data import load_dataset
from sslcore.engine.training_run import execute_run
from sslcore.runs import process_manager
from sslcore.runs.process_manager import JobManager
from sslcore.tasks import TASKS, register_task
from sslcore.tasks._reconstruction import ReconstructionTask
from sslcore.tasks.build import build_task
from tests.app.conftest import open_page
from tests.conftest import tiny_config
from tests.runs.jobs_support import TIMEOUT
from ui import forms

TRAIN = "app_pages/train.py"


def labels(widgets) -> set[str]:  # noqa: ANN001 - any AppTest widget list
    return {w.label for w in widgets}


def train_button(at: AppTest):  # noqa: ANN201 - an AppTest Button
    [button] = [b for b in at.button if b.label == "Train"]
    return button


def live_chart_names(at: AppTest) -> list[str]:
    """Names of the charts the live-chart component was given in this run."""
    [component] = at.get("component_instance")
    return [c["name"] for c in json.loads(component.proto.json_args)["charts"]]


def test_form_is_generated_from_the_config_dataclasses(jobs: JobManager) -> None:
    at = open_page(TRAIN)
    assert not at.exception
    assert at.selectbox(key="form.data.dataset").value == "mnist5k"
    assert at.selectbox(key="form.task.name").value == "simclr"
    assert at.selectbox(key="form.encoder.name").value == "convnet"
    assert {"temperature", "projection dim", "epochs", "batch size", "lr", "width", "knn k"} <= labels(at.number_input)
    batch = at.number_input(key="form.train.batch_size")
    [declared] = [s for s in field_specs(TrainConfig) if s.name == "batch_size"]
    assert batch.value == declared.default
    assert declared.help in batch.help and "train.batch_size" in batch.help and "between 2 and 8192" in batch.help
    assert at.selectbox(key="form.train.optimizer").options == ["adamw", "sgd"]
    assert {"Split and download", "Advanced settings"} <= {e.label for e in at.expander}
    assert "**4,000** training + **1,000** test images" in at.markdown[0].value
    assert {c.value for c in at.caption} >= {"view 1", "view 2"}  # SimCLR's two augmented views
    assert not train_button(at).disabled


def test_choosing_a_dataset_updates_its_facts_and_samples(jobs: JobManager) -> None:
    at = open_page(TRAIN)
    at.selectbox(key="form.data.dataset").select("digits").run()
    assert not at.exception
    facts = at.markdown[0].value
    assert "**1,438** training + **359** test images" in facts and "**10** classes" in facts and "1×8×8" in facts
    assert at.image[0].proto.imgs  # the sample grid


def test_choosing_a_task_swaps_its_fields_explanation_and_preview(jobs: JobManager) -> None:
    at = open_page(TRAIN)
    at.selectbox(key="form.task.name").select("rotation").run()
    assert not at.exception
    assert "all rotations" in labels(at.checkbox) and "hidden dim" in labels(at.number_input)
    assert "temperature" not in labels(at.number_input)
    assert any("RotNet" in m.value for m in at.markdown)
    assert {"0°", "90°", "180°", "270°"} <= {c.value for c in at.caption}

    at.selectbox(key="form.task.name").select("masked_autoencoder").run()
    assert {"mask ratio", "patch size"} <= labels(at.number_input)
    assert {"original", "input"} <= {c.value for c in at.caption}


def test_a_task_with_its_own_learning_rate_shows_it_and_shared_fields_stay(jobs: JobManager) -> None:
    at = open_page(TRAIN)
    at.number_input(key="form.train.batch_size").set_value(64).run()  # a shared field: stays across tasks
    at.selectbox(key="form.task.name").select("simsiam").run()
    assert not at.exception
    assert at.number_input(key="form.train.simsiam.lr").value == 5e-4
    assert planned_peak_lr(at) == pytest.approx(5e-4)  # the chart plans what Train would run
    assert at.number_input(key="form.train.batch_size").value == 64
    at.number_input(key="form.train.simsiam.lr").set_value(1e-3).run()
    at.selectbox(key="form.task.name").select("simclr").run()
    assert at.number_input(key="form.train.lr").value == 2e-3
    at.selectbox(key="form.task.name").select("simsiam").run()
    assert at.number_input(key="form.train.simsiam.lr").value == 5e-4  # its default again, like its task fields
    assert at.number_input(key="form.train.batch_size").value == 64


def test_the_form_opened_on_a_simsiam_run_shows_its_learning_rate() -> None:
    config = default_config(**{"task.name": "simsiam", "train.lr": "0.0007"})
    state = forms.form_state(config)
    assert state["form.train.simsiam.lr"] == 7e-4 and "form.train.lr" not in state
    assert state["form.train.batch_size"] == config.train.batch_size


def test_an_invalid_combination_shows_the_engines_message_and_blocks_training(jobs: JobManager) -> None:
    at = open_page(TRAIN)
    at.selectbox(key="form.data.dataset").select("digits").run()
    at.selectbox(key="form.task.name").select("masked_autoencoder").run()
    at.number_input(key="form.task.masked_autoencoder.patch_size").set_value(16).run()

    config = default_config(**{"data.dataset": "digits", "task.name": "masked_autoencoder", "task.patch_size": 16})
    with pytest.raises(ConfigError) as refused:
        build_task(config, load_dataset("digits"))
    assert [e.value for e in at.error] == [str(refused.value)]
    assert train_button(at).disabled


def test_a_dataset_without_files_is_explained_and_cannot_be_trained(jobs: JobManager) -> None:
    at = open_page(TRAIN)
    at.selectbox(key="form.data.dataset").select("mnist").run()
    assert not at.exception
    assert any("MNIST is not available" in w.value for w in at.warning)
    assert train_button(at).disabled


def test_train_starts_a_run_and_the_page_shows_it(jobs: JobManager) -> None:
    at = open_page(TRAIN)
    at.selectbox(key="form.data.dataset").select("digits").run()
    at.number_input(key="form.train.epochs").set_value(1).run()
    train_button(at).click().run()

    assert not at.exception
    [run] = jobs.store.list()
    assert run.config().data.dataset == "digits" and run.config().train.epochs == 1
    assert at.query_params["run"] == run.id
    assert "#### simclr on digits" in [m.value for m in at.markdown]
    assert any(b in [m.value for m in at.markdown] for b in (":gray-badge[queued]", ":blue-badge[running]"))
    assert "Stop" in labels(at.button)

    assert jobs.wait(run, TIMEOUT) == "completed"
    at.run()
    assert ":green-badge[completed]" in [m.value for m in at.markdown]
    assert at.get("progress")[0].proto.text.startswith("Completed after 1/1 epochs")
    assert live_chart_names(at) == ["loss", "lr", "throughput", "knn", "test_pair_acc", "test_loss", "eff_rank",
                                    "emb_std", "align_uniform", "sys_cpu", "sys_memory"]  # the score beside k-NN
    assert "Stop" not in labels(at.button)
    links = {link.proto.label: link.proto.query_string for link in at.get("page_link")}
    for page in ("Reconstructions & views", "Embeddings", "Evaluate"):  # each opens this run
        assert f"run={run.id}" in links[page]


def test_the_processes_field_trains_one_run_on_several_processes(jobs: JobManager,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(process_manager, "cpu_count", lambda: 4)  # the same bounds on any machine
    at = open_page(TRAIN)
    assert at.number_input(key="form.processes").value == 1
    at.selectbox(key="form.data.dataset").select("digits").run()
    at.number_input(key="form.processes").set_value(3).run()  # refused with its message, not silently kept at 1
    [refused] = [e.value for e in at.error]  # capped by the 2 job slots (SSL_MAX_JOBS)
    assert refused.startswith("processes = 3 is not allowed: expected 1 to 2 (") and "2 job slots" in refused
    assert train_button(at).disabled
    at.number_input(key="form.train.epochs").set_value(1).run()
    at.number_input(key="form.train.batch_size").set_value(65).run()
    at.number_input(key="form.processes").set_value(2).run()
    assert [e.value for e in at.error] == ["train.batch_size = 65 is not allowed with 2 processes: the global "
                                           "batch must be a multiple of the number of processes"]
    assert train_button(at).disabled

    at.number_input(key="form.train.batch_size").set_value(64).run()
    at.number_input(key="form.encoder.width").set_value(8).run()  # a small run: two processes start slower
    train_button(at).click().run()
    assert not at.exception
    [run] = jobs.store.list()
    assert run.status()["processes"] == 2
    assert jobs.wait(run, 2 * TIMEOUT) == "completed", run.status().get("error")
    assert run.status()["world_size"] == 2


def test_a_failed_run_shows_the_reason_and_the_traceback(jobs: JobManager, tmp_path: Path) -> None:
    # The dataset's files were there when the run was submitted and gone when it started (submit checks them).
    run = jobs.store.create(tiny_config(**{"data.dataset": "mnist", "data.root": str(tmp_path / "nowhere")}))
    assert execute_run(run) == "failed"

    at = open_page(TRAIN, run_id=run.id)
    assert not at.exception
    assert ":red-badge[failed]" in [m.value for m in at.markdown]
    [error] = [e.value for e in at.error if "The run failed" in e.value]
    assert "MNIST is not available" in error
    assert "Traceback" in {e.label for e in at.expander}
    assert any("DatasetUnavailableError" in c.value for c in at.code)


def test_a_run_this_machine_cannot_start_is_refused_at_the_click(jobs: JobManager) -> None:
    at = open_page(TRAIN)
    at.selectbox(key="form.data.dataset").select("digits").run()
    at.selectbox(key="form.train.device").select("mps").run()  # valid anywhere, absent on this machine
    train_button(at).click().run()
    assert not at.exception
    assert any("This run cannot start: train.device = 'mps'" in e.value for e in at.error)
    assert not jobs.store.list() and "run" not in at.query_params


@pytest.mark.parametrize("run_id, message",
                         [("no-such-run", "no run 'no-such-run'"), ("../outside", "is not a run id")])
def test_a_bad_run_id_in_the_url_is_reported_not_followed(jobs: JobManager, run_id: str, message: str) -> None:
    at = open_page(TRAIN, run_id=run_id)
    assert not at.exception
    assert any(message in w.value for w in at.warning)
    assert "run" not in at.query_params


@dataclass(frozen=True)
class DimmingConfig(TaskConfig):
    darkness: float = param(0.5, "How much darker the input is than the target.", min=0.0, max=0.9)


class Dimming(ReconstructionTask):
    """Brighten a dimmed image back (a stand-in for a task file someone just added)."""

    Config = DimmingConfig

    def corrupt(self, images, generator):  # noqa: ANN001, ANN201
        return images * (1.0 - self.config.darkness), None


@pytest.fixture
def new_task_file() -> Iterator[str]:
    register_task("dimming_test", "Undo a dimming (registered by a test)")(Dimming)
    yield "dimming_test"
    TASKS._entries.pop("dimming_test")  # the registry has no public removal: tasks are added, never dropped


def test_a_new_task_file_gets_its_form_and_preview_without_ui_edits(jobs: JobManager, new_task_file: str) -> None:
    at = open_page(TRAIN)
    assert f"{new_task_file} — Undo a dimming (registered by a test)" in at.selectbox(key="form.task.name").options
    at.selectbox(key="form.task.name").select(new_task_file).run()
    assert not at.exception
    darkness = at.number_input(key=f"form.task.{new_task_file}.darkness")
    assert darkness.value == 0.5 and "How much darker" in darkness.help and "between 0 and 0.9" in darkness.help
    darkness.set_value(0.95).run()  # its bounds are checked like any built-in field's
    assert "task.darkness = 0.95 is not allowed: expected a number between 0 and 0.9" in [e.value for e in at.error]
    assert train_button(at).disabled
    at.number_input(key=f"form.task.{new_task_file}.darkness").set_value(0.5).run()
    assert {"original", "input"} <= {c.value for c in at.caption}
    assert not train_button(at).disabled


def planned_peak_lr(at: AppTest) -> float | None:
    """The highest learning rate on the page's planned-LR chart, or None when no chart is drawn."""
    for chart in at.get("plotly_chart"):
        figure = json.loads(chart.proto.spec)
        if "Planned learning rate" in json.dumps(figure.get("layout", {}).get("title", "")):
            return max(figure["data"][0]["y"])
    return None


@pytest.mark.parametrize("key, value, message", [
    ("form.train.epochs", 0, "train.epochs = 0 is not allowed: expected an integer between 1 and 10000"),
    ("form.train.lr", 100.0, "train.lr = 100.0 is not allowed: expected a number between 1e-07 and 10"),
])
def test_an_invalid_field_is_refused_with_its_message_shown(jobs: JobManager, key: str, value: float,
                                                           message: str) -> None:
    # The value the user typed reaches the engine's validation: it is neither clamped nor silently replaced
    # by the last valid one, and Train stays disabled while it is there.
    at = open_page(TRAIN)
    at.selectbox(key="form.data.dataset").select("digits").run()
    at.number_input(key="form.train.lr").set_value(0.01).run()
    assert planned_peak_lr(at) == pytest.approx(0.01)  # the chart shows what Train would run

    at.number_input(key=key).set_value(value).run()
    assert not at.exception
    shown = [e.value for e in at.error]
    assert shown.count(message) == 2, shown  # under the field, and next to the disabled Train button
    assert train_button(at).disabled
    assert planned_peak_lr(at) is None  # no chart of a schedule that would not run
    assert not jobs.store.list()


def test_number_boxes_keep_no_hidden_bounds(jobs: JobManager) -> None:
    # A number box with min/max would keep its last valid value when a person types an out-of-range one
    # (the browser only marks it red): the bounds live in the help text and the engine checks them.
    at = open_page(TRAIN)
    for box in at.number_input:
        assert box.min is None and box.max is None, box.key
    lr = at.number_input(key="form.train.lr")
    assert "between 1e-07 and 10" in lr.help
