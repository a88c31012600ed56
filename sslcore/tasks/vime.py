"""VIME self-supervision (Yoon et al. 2020): mask cells, fill them from the column's marginal, then tell
which cells were replaced and what they held.

Each cell is masked with probability ``mask_rate`` and replaced by the value of the same column in a
random other row, so a replaced cell looks plausible on its own and only its relation to the rest of the
row gives it away. From the corrupted row's features two heads predict the mask (binary cross-entropy)
and the original values of every cell (squared error in standardised units, weighted by ``alpha``).
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from sslcore.config_schema import TaskConfig, param
from sslcore.models import Encoder
from sslcore.tasks._table import RECONSTRUCTION_PANELS, TableTask, bernoulli_cells, marginal_swap, value_head
from sslcore.tasks.base import StepOutput, batched_eval, register_task
from sslcore.tasks.panels import Value


def _mask_accuracy(arrays: Mapping[str, np.ndarray]) -> np.ndarray:
    """(N,): the share of each row's cells whose replaced-or-not the mask head called right."""
    return ((arrays["mask_probability"] > 0.5) == arrays["masked"]).mean(axis=1)


@dataclass(frozen=True)
class VIMEConfig(TaskConfig):
    mask_rate: float = param(0.3, "Probability that a cell is masked and replaced from its column's marginal.",
                             min=0.05, max=0.9)
    alpha: float = param(2.0, "Weight of the value-reconstruction loss against the mask-estimation loss.",
                         min=0.0, max=100.0)
    head_hidden: int = param(256, "Hidden units of the mask and value heads.", min=8, max=4096)


@register_task("vime", "Table rows: mask cells, replace them from the column's marginal; predict the mask and "
               "the original values (VIME)")
class VIME(TableTask):
    Config = VIMEConfig
    config: VIMEConfig
    display_name = "VIME"
    panels = dataclasses.replace(
        RECONSTRUCTION_PANELS, required=("mask_probability",),
        values=(*RECONSTRUCTION_PANELS.values,
                Value("mask_acc", "mask found", "{:.0%}", higher_is_better=True, compute=_mask_accuracy)),
        caption="error {error:.4f} · mask found {mask_acc:.0%}",
        explanation="Each heat-map row is one test row in standard deviations from the train mean. A random "
                    "share of its cells (the task's mask rate; outlined) were replaced by the same column's value "
                    "in another row; "
                    "from the corrupted row the model rebuilds every original value (the error, per row and per "
                    "column in the bars) and says which cells were replaced (mask found: the share of cells it "
                    "called right).")

    def __init__(self, encoder: Encoder, config: VIMEConfig, sample_shape: tuple[int, ...]) -> None:
        super().__init__(encoder, config, sample_shape)
        self.mask_head = value_head(encoder.feature_dim, config.head_hidden, self.columns)
        self.value_head = value_head(encoder.feature_dim, config.head_hidden, self.columns)

    def corrupt(self, rows: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """(corrupted rows (B, F), the masked cells bool (B, F))."""
        cells = bernoulli_cells(tuple(rows.shape), self.config.mask_rate, generator, rows.device)
        return marginal_swap(rows, cells, generator), cells

    def forward_pass(self, rows: torch.Tensor, generator: torch.Generator) -> dict[str, torch.Tensor]:
        """inputs, cells (B, F); mask_logits, values (B, F) standardised; per-row losses mask_bce, value_mse (B,)."""
        inputs, cells = self.corrupt(rows, generator)
        features = self.encoder(inputs)
        logits, values = self.mask_head(features).float(), self.value_head(features).float()
        mask_bce = F.binary_cross_entropy_with_logits(logits, cells.float(), reduction="none").mean(dim=1)
        value_mse = ((values - self.standardise(rows)) ** 2).mean(dim=1)
        return {"inputs": inputs, "cells": cells, "mask_logits": logits, "values": values, "mask_bce": mask_bce,
                "value_mse": value_mse}

    def training_step(self, rows: torch.Tensor, generator: torch.Generator) -> StepOutput:
        out = self.forward_pass(rows, generator)
        mask_acc = ((out["mask_logits"] > 0) == out["cells"]).float().mean()
        loss = out["mask_bce"].mean() + self.config.alpha * out["value_mse"].mean()
        return StepOutput(loss=loss, metrics={"mask_acc": mask_acc, "value_mse": out["value_mse"].mean()})

    def make_views(self, rows: torch.Tensor, generator: torch.Generator) -> dict[str, torch.Tensor]:
        inputs, _ = self.corrupt(rows, generator)
        return {"original": rows, "input": inputs}

    def snapshot(self, rows: torch.Tensor, generator: torch.Generator) -> dict[str, np.ndarray]:
        out = self.forward_pass(rows, generator)
        return {**self.shown(rows, out["inputs"], out["cells"]),
                "reconstruction": out["values"].cpu().numpy().astype(np.float32),
                "mask_probability": torch.sigmoid(out["mask_logits"]).cpu().numpy().astype(np.float32),
                "error": out["value_mse"].cpu().numpy().astype(np.float32)}

    def evaluate(self, rows: torch.Tensor, generator: torch.Generator) -> dict[str, float]:
        def scores(x: torch.Tensor) -> dict[str, torch.Tensor]:
            out = self.forward_pass(x, generator)
            return {"test_recon_mse": out["value_mse"],
                    "test_mask_acc": ((out["mask_logits"] > 0) == out["cells"]).float().mean(dim=1)}

        return batched_eval(scores, rows)
