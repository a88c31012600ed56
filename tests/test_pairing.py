"""The pairing rules: which data kinds, image shapes and encoder families a task accepts, and the fix it names."""
from __future__ import annotations

from sslcore.pairing import DataFacts, DataRequirements, _data_problem, _encoder_problem, encoders_for, tasks_for


def test_a_table_is_refused_by_an_image_task_with_the_reason() -> None:
    problem = _data_problem(DataRequirements(), DataFacts("wine", "table", (13,)))
    assert problem == "needs image data, and 'wine' is table data"


def test_colour_and_size_requirements_name_the_dataset() -> None:
    grey = DataFacts("mnist5k", "image", (1, 28, 28))
    assert "colour" in _data_problem(DataRequirements(colour=True), grey)
    assert "at least 32x32" in _data_problem(DataRequirements(min_size=32), grey)
    assert _data_problem(DataRequirements(colour=True), DataFacts("c", "image", (3, 32, 32))) is None


def test_encoder_family_and_kind() -> None:
    req = DataRequirements(encoder_families=("vit",))
    assert _encoder_problem(req, "convnet", ("image",), "cnn", "image") == (
        "needs a vit encoder, and 'convnet' is a cnn encoder")
    assert "takes image data" in _encoder_problem(DataRequirements(kinds=("table",)), "convnet", ("image",), "cnn",
                                                  "table")


def test_builtin_image_tasks_fit_the_builtin_image_datasets() -> None:
    assert "simclr" in tasks_for("mnist5k")
    assert set(encoders_for("simclr", "digits")) >= {"convnet", "mlp"}
