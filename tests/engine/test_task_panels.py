"""What a task declares about drawing its snapshot (sslcore.tasks.panels): ordering worst first, the epoch's
summary number, the caption under each image, which pictures are shown, and mistakes refused early."""
from __future__ import annotations

import numpy as np
import pytest

from sslcore.tasks import TASKS
from sslcore.tasks.base import PretextTask, register_task
from sslcore.tasks.panels import ImageColumn, SnapshotPanels, Summary, Value


def images(n: int, value: int = 0) -> np.ndarray:
    """(n, 1, 8, 8) uint8 images, image i filled with value + i."""
    return (np.arange(n, dtype=np.uint8)[:, None, None, None] + value) * np.ones((1, 1, 8, 8), np.uint8)


def reconstruction(errors: list[float], same_input: bool = False) -> dict[str, np.ndarray]:
    n = len(errors)
    return {"original": images(n), "input": images(n) if same_input else images(n, 50),
            "reconstruction": images(n, 100), "error": np.array(errors, np.float32)}


def rotation(predicted: list[int], true: list[int], confidence: list[float]) -> dict[str, np.ndarray]:
    n = len(true)
    return {"original": images(n), "rotated": images(n), "predicted_angle": np.array(predicted),
            "true_angle": np.array(true), "confidence": np.array(confidence, np.float32)}


def test_worst_reconstructions_come_first() -> None:
    panels, arrays = TASKS.get("autoencoder").panels, reconstruction([0.2, 0.5, 0.1, 0.4])
    assert list(panels.worst_order(arrays)) == [1, 3, 0, 2]
    assert panels.summary_value(arrays) == pytest.approx(0.3)
    assert not panels.higher_is_better()  # a falling error is the good news


def test_confidently_wrong_rotations_come_first_then_unsure_right_ones() -> None:
    panels = TASKS.get("rotation").panels
    arrays = rotation(predicted=[0, 90, 90, 180], true=[0, 0, 180, 180], confidence=[0.9, 0.6, 0.95, 0.4])
    assert list(panels.worst_order(arrays)) == [2, 1, 3, 0]
    assert panels.summary_value(arrays) == pytest.approx(0.5)  # two of four right
    assert panels.summary.percent and panels.higher_is_better()


def test_least_similar_view_pairs_come_first_and_a_rising_similarity_is_good_news() -> None:
    panels = TASKS.get("simclr").panels
    arrays = {"original": images(3), "view1": images(3), "view2": images(3),
              "pair_similarity": np.array([0.8, 0.2, 0.5], np.float32)}
    assert list(panels.worst_order(arrays)) == [1, 2, 0]
    assert panels.summary_value(arrays) == pytest.approx(0.5)
    assert panels.higher_is_better()


def test_captions_say_what_the_model_did() -> None:
    assert TASKS.get("autoencoder").panels.caption_of(reconstruction([0.01234, 0.5]), 0) == "error 0.0123"
    panels, arrays = TASKS.get("rotation").panels, rotation(predicted=[90, 90], true=[90, 270], confidence=[0.873, 0.5])
    assert panels.caption_of(arrays, 0) == "pred 90° (87%) ✓ · true 90°"
    assert panels.caption_of(arrays, 1) == "pred 90° (50%) ✗ · true 270°"


def test_the_plain_autoencoder_shows_no_separate_input_panel() -> None:
    def titles(task: str, arrays: dict[str, np.ndarray]) -> list[str]:
        return [c.title for c in TASKS.get(task).panels.columns(arrays)]

    assert titles("autoencoder", reconstruction([0.1], same_input=True)) == ["original", "reconstruction"]
    assert titles("masked_autoencoder", reconstruction([0.1])) == ["original", "masked input", "reconstruction"]
    assert titles("denoising_autoencoder", reconstruction([0.1])) == ["original", "noisy input", "reconstruction"]


def test_every_task_explains_its_pictures_and_names_itself() -> None:
    for entry in TASKS:
        assert entry.obj.panels.explanation, entry.name
        assert entry.obj.display_name, entry.name
    assert TASKS.get("simclr").display_name == "SimCLR"


def test_panels_that_sort_or_sum_up_by_an_undeclared_value_are_refused() -> None:
    def panels(worst: str, summed: str) -> SnapshotPanels:
        values = (Value("error", "error", higher_is_better=False), Value("angle", "angle"))
        return SnapshotPanels(images=(), values=values, worst_first=worst, worst_label="",
                              summary=Summary(summed, "", ""))

    with pytest.raises(ValueError, match="worst_first = 'loss' is not one of the values"):
        panels("loss", "error")
    with pytest.raises(ValueError, match="summary.value = 'loss'"):
        panels("error", "loss")
    with pytest.raises(ValueError, match="needs a value with higher_is_better set"):
        panels("angle", "error")


def test_without_a_caption_template_each_value_is_written_with_its_label_and_format() -> None:
    panels = SnapshotPanels(images=(ImageColumn("original", "original"),),
                            values=(Value("error", "error", "{:.3f}", higher_is_better=False),
                                    Value("angle", "angle", "{:d}°")),
                            worst_first="error", worst_label="Worst first",
                            summary=Summary("error", "Mean error", "error"))
    arrays = {"original": images(2), "error": np.array([0.5, 0.25], np.float32), "angle": np.array([90, 180])}
    assert panels.caption_of(arrays, 1) == "error 0.250 · angle 180°"


def test_a_task_without_panels_cannot_be_registered() -> None:
    with pytest.raises(TypeError, match="task 'unfinished' must set panels"):
        register_task("unfinished", "no panels yet")(type("Unfinished", (PretextTask,), {}))
    assert "unfinished" not in TASKS


def test_required_arrays_are_the_pictures_the_stored_values_and_the_extras() -> None:
    panels = TASKS.get("rotation").panels
    assert set(panels.required_arrays()) == {"original", "rotated", "confidence", "true_angle", "predicted_angle"}
    assert isinstance(panels.images[0], ImageColumn)
