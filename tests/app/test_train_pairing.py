"""AppTest: on the Train page, a task that does not fit the data is explained, fixable and not trained; a task
that narrows the encoders (mae) says why."""
from __future__ import annotations

from streamlit.testing.v1 import AppTest

from sslcore.runs.process_manager import JobManager
from tests.app.conftest import open_page

TRAIN = "app_pages/train.py"


def button(at: AppTest, label: str):  # noqa: ANN201 - an AppTest Button
    [found] = [b for b in at.button if b.label == label]
    return found


def test_a_colour_task_on_grey_digits_says_why_and_switches_to_a_colour_dataset(jobs: JobManager) -> None:
    at = open_page(TRAIN)
    options = at.selectbox(key="form.task.name").options
    assert "colorization — not for mnist5k: Show a grey image, predict its colours (Zhang et al. 2016, simplified: " \
           "chroma regression); colour datasets only" in options
    at.selectbox(key="form.task.name").select("colorization").run()
    assert not at.exception
    [warning] = [w.value for w in at.warning]
    assert "needs colour images, and 'mnist5k' is grey" in warning
    assert not at.error, "the reason is said once, under the task picker"
    assert button(at, "Train").disabled

    button(at, "Use dataset shapes").click().run()
    assert not at.exception
    assert at.selectbox(key="form.data.dataset").value == "shapes"
    assert not at.warning and not at.error
    assert {"original", "input"} <= {c.value for c in at.caption}  # the preview: the grey input the model gets
    assert not button(at, "Train").disabled
    assert not jobs.store.list(), "nothing was started"


def test_mae_offers_only_the_vit_says_why_and_shows_its_fields(jobs: JobManager) -> None:
    at = open_page(TRAIN)
    assert "patch size" not in {n.label for n in at.number_input}  # a CNN has no patches
    at.selectbox(key="form.task.name").select("mae").run()
    assert not at.exception
    encoder = at.selectbox(key="form.encoder.name")
    assert encoder.value == "vit_tiny" and [o.split(" — ")[0] for o in encoder.options] == ["vit_tiny"]
    assert any("task 'mae' needs a vit encoder, and 'convnet' is a cnn encoder" in c.value for c in at.caption)
    assert {"patch size", "depth"} <= {n.label for n in at.number_input}
    assert {"original", "visible patches"} <= {c.value for c in at.caption}
    assert not button(at, "Train").disabled

    at.number_input(key="form.encoder.patch_size").set_value(5).run()  # does not divide 28
    assert [e.value for e in at.error] == ["encoder.patch_size = 5 is not allowed: expected a patch size that divides "
                                           "the image side (28x28 images): one of 1, 2, 4, 7, 14, 28"]
    assert button(at, "Train").disabled
