"""Out-of-range hyperparameters of the two-view methods are refused with one line naming field, value and range."""
from __future__ import annotations

import pytest

from sslcore.cli import build_parser, main
from sslcore.cli_train import train_base, train_overrides
from sslcore.config import ConfigError, config_from_dict, default_config, task_train_defaults
from sslcore.tasks import TASKS
from tests.conftest import fitting_data


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


def test_simsiam_starts_from_its_own_learning_rate_and_a_given_one_wins() -> None:
    assert default_config(**{"task.name": "simsiam"}).train.lr == 5e-4
    assert default_config(**{"task.name": "simsiam", "train.lr": "0.003"}).train.lr == 3e-3
    assert default_config(**{"task.name": "simclr"}).train.lr == 2e-3
    # A stored config names every training field: a run keeps the learning rate it was made with.
    stored = default_config(**{"task.name": "simsiam", "train.lr": "0.002"}).to_dict()
    assert config_from_dict(stored, stored=True).train.lr == 2e-3


@pytest.mark.parametrize("flags, expected", [([], 5e-4), (["--lr", "0.001"], 1e-3)])
def test_the_cli_trains_simsiam_at_its_own_learning_rate_unless_told(flags: list[str], expected: float) -> None:
    args = build_parser().parse_args(["train", "--task", "simsiam", *flags])
    assert config_from_dict(train_base(args), train_overrides(args)).train.lr == expected


@pytest.mark.parametrize("task", TASKS.names())
def test_every_tasks_own_training_defaults_are_valid_training_settings(task: str) -> None:
    config = default_config(**{"task.name": task, **fitting_data(task)})
    for field, value in task_train_defaults(task).items():
        assert getattr(config.train, field) == value
