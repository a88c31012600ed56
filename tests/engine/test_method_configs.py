"""Out-of-range hyperparameters of the two-view methods are refused with one line naming field, value and range."""
from __future__ import annotations

import pytest

from sslcore.cli import main
from sslcore.config import ConfigError, default_config


@pytest.mark.parametrize("task, field, value, allowed", [
    ("byol", "momentum", "1.5", "a number between 0 and 1"),
    ("moco", "temperature", "0", "a number between 0.01 and 10"),
    ("dino", "teacher_temperature", "0", "a number between 0.01 and 10"),
    ("dino", "center_momentum", "-0.1", "a number between 0 and 1"),
    ("dino", "local_crops", "11", "an integer between 0 and 10"),
    ("vicreg", "variance_weight", "-1", "a number between 0 and 1000"),
    ("barlow_twins", "lambda_offdiag", "-0.005", "a number between 0 and 1"),
    ("simsiam", "predictor", "maybe", "true or false"),
])
def test_out_of_range_method_settings_name_field_value_and_range(task: str, field: str, value: str,
                                                                 allowed: str) -> None:
    with pytest.raises(ConfigError) as err:
        default_config(**{"task.name": task, f"task.{field}": value})
    assert str(err.value) == f"task.{field} = {value!r} is not allowed: expected {allowed}"


@pytest.mark.parametrize("task, assignment", [("byol", "task.momentum=1.5"), ("vicreg", "task.covariance_weight=-2"),
                                              ("moco", "task.temperature=0")])
def test_cli_refuses_with_one_line_and_creates_no_run(task: str, assignment: str, capsys, tmp_path) -> None:
    assert main(["train", "--task", task, "--set", assignment, "--runs-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    field, value = assignment.split("=")
    assert len(err.splitlines()) == 1 and f"{field} = '{value}' is not allowed" in err
    assert not any(tmp_path.iterdir()), "nothing is created for a refused config"


def test_simsiam_predictor_can_be_switched_off() -> None:
    assert default_config(**{"task.name": "simsiam", "task.predictor": "false"}).task.predictor is False


def test_python_m_sslcore_exits_2_for_a_momentum_of_1_5(tmp_path) -> None:
    from tests.engine.test_cli import sslcore

    result = sslcore("train", "--task", "byol", "--set", "task.momentum=1.5", "--runs-dir", str(tmp_path / "runs"))
    assert result.returncode == 2
    assert result.stderr.strip() == "error: task.momentum = '1.5' is not allowed: expected a number between 0 and 1"
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())
