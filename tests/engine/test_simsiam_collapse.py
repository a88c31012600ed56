"""SimSiam without its predictor collapses (Chen & He 2021, Figure 2); with it, it does not."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from sslcore.data import load_dataset
from sslcore.engine.trainer import Trainer
from sslcore.tasks.build import build_task
from tests.conftest import tiny_config


def normalised_output_spread(task, images: torch.Tensor) -> float:
    """std over images of the L2-normalised projector outputs, mean over dimensions, times sqrt(D):
    about 1 when the outputs spread over the sphere, 0 when every image gets the same output."""
    task.eval()
    with torch.no_grad():
        z = F.normalize(task.projector(task.encoder(images)), dim=1)  # (N, D)
    return float(z.std(dim=0).mean()) * z.shape[1] ** 0.5


@pytest.mark.parametrize("predictor, collapses", [(False, True), (True, False)])
def test_simsiam_collapses_without_its_predictor_only(predictor: bool, collapses: bool) -> None:
    # 5 epochs: at SimSiam's own learning rate (5e-4) the collapse takes a few; the spread without the predictor
    # was 0.17 after 2 epochs, 0.14 after 3 and 0.10 after 5 (with it: 0.76 after 3).
    config = tiny_config("simsiam", **{"task.predictor": predictor, "train.epochs": 5, "train.batch_size": 64,
                                       "train.knn_k": 0})
    data = load_dataset("digits")
    torch.manual_seed(0)
    task = build_task(config, data)
    Trainer.create(config, task, data, torch.device("cpu")).fit()
    spread = normalised_output_spread(task, data.test.images.float() / 255)
    if collapses:
        assert spread < 0.15, f"without the predictor the outputs should collapse; spread {spread:.3f}"
    else:
        assert spread > 0.3, f"with the predictor the outputs should stay spread; spread {spread:.3f}"
