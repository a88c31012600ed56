"""AppTest: issue 16's out-of-range method settings typed into the Train form are refused with the engine's one
line (field, value, what is allowed), Train stays disabled and no run is created. The CLI side of the same three
examples is in tests/engine/test_method_configs.py and tests/engine/test_pairing_refusals.py."""
from __future__ import annotations

import pytest

from sslcore.runs.process_manager import JobManager
from tests.app.conftest import open_page

TRAIN = "app_pages/train.py"


@pytest.mark.parametrize("task, key, value, message", [
    ("byol", "form.task.byol.momentum", 1.5, "task.momentum = 1.5 is not allowed: expected a number between 0 and 1"),
    ("mae", "form.task.mae.mask_ratio", 1.0,
     "task.mask_ratio = 1.0 is not allowed: expected a number between 0.05 and 0.95"),
    ("jigsaw", "form.task.jigsaw.grid", 3,
     "task.grid = 3 is not allowed: expected a grid that divides the image side (28x28 images): one of 2, 4"),
])
def test_an_out_of_range_method_setting_is_refused_in_the_form(jobs: JobManager, task: str, key: str,
                                                              value: float, message: str) -> None:
    at = open_page(TRAIN)
    at.selectbox(key="form.task.name").select(task).run()  # on the default mnist5k (28x28), which all three fit
    assert not at.exception and not at.error
    at.number_input(key=key).set_value(value).run()
    assert not at.exception
    assert message in [e.value for e in at.error]
    [train] = [b for b in at.button if b.label == "Train"]
    assert train.disabled
    assert not jobs.store.list(), "nothing is written for a refused setting"
