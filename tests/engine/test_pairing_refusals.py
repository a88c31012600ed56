"""A task, encoder and dataset that do not fit are refused before anything is written, with the fix named."""
from __future__ import annotations

from pathlib import Path

import pytest

from sslcore.cli import main
from sslcore.config import ConfigError, config_from_dict
from sslcore.pairing import datasets_for, encoders_for, tasks_for


@pytest.mark.parametrize("args, message", [
    (["--task", "colorization"],
     "task 'colorization' needs colour images, and 'mnist5k' is grey (1 channel); "
     "pick a dataset such as cifar10, shapes"),
    (["--task", "mae", "--encoder", "convnet"],
     "task 'mae' needs a vit encoder, and 'convnet' is a cnn encoder; pick encoder vit_tiny"),
    (["--task", "jigsaw", "--set", "task.grid=3"],
     "task.grid = 3 is not allowed: expected a grid that divides the image side (28x28 images): one of 2, 4"),
    (["--task", "mae", "--encoder", "vit_tiny", "--set", "task.mask_ratio=1.0"],
     "task.mask_ratio = '1.0' is not allowed: expected a number between 0.05 and 0.95"),
    (["--encoder", "vit_tiny", "--set", "encoder.patch_size=5"],
     "encoder.patch_size = 5 is not allowed: expected a patch size that divides the image side (28x28 images): "
     "one of 1, 2, 4, 7, 14, 28"),
])
def test_cli_refuses_with_one_line_and_creates_no_run(args: list[str], message: str, capsys, tmp_path: Path) -> None:
    assert main(["train", "--runs-dir", str(tmp_path), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert err.splitlines() == [f"error: {message}"]
    assert not any(tmp_path.iterdir()), "no run folder for a refused pairing"


def test_config_validation_names_the_fix_and_the_fix_is_accepted() -> None:
    with pytest.raises(ConfigError, match=r"pick a dataset such as .*shapes"):
        config_from_dict({"task": {"name": "colorization"}})
    with pytest.raises(ConfigError, match=r"pick encoder vit_tiny$"):
        config_from_dict({"task": {"name": "mae"}, "encoder": {"name": "convnet"}, "data": {"dataset": "shapes"}})
    colour = config_from_dict({"task": {"name": "colorization"}, "data": {"dataset": "shapes"}})
    assert colour.task.name == "colorization"
    assert config_from_dict({"task": {"name": "mae"}, "encoder": {"name": "vit_tiny"}}).encoder.name == "vit_tiny"
    assert config_from_dict({"task": {"name": "mae"}}).encoder.name == "vit_tiny"  # no encoder named: one that fits


def test_fitting_choices_for_the_new_tasks() -> None:
    assert "colorization" not in tasks_for("mnist5k") and "colorization" in tasks_for("shapes")
    assert datasets_for("colorization")[0] == "shapes"  # embedded (no download) before cifar10
    assert encoders_for("mae", "mnist5k") == ["vit_tiny"]
    assert {"convnet", "vit_tiny"} <= set(encoders_for("jigsaw", "shapes"))
