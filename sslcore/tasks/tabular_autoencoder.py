"""Tabular autoencoder: squeeze each row through the encoder's features and rebuild all of its columns.

The classic picture of self-supervision on tables (an MLP encoder, a bottleneck, an MLP decoder). With
``corruption`` above 0 it is a denoising autoencoder (Vincent et al. 2008): a share of each row's cells is
corrupted before encoding (by default replaced from the column's empirical marginal, as in VIME and
SCARF), and the clean row must come back, which a copy of the input cannot do. The loss is the mean
squared error over all cells in standardised units, so every column counts the same.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from sslcore.config_schema import TaskConfig, param
from sslcore.models import Encoder
from sslcore.tasks._table import RECONSTRUCTION_PANELS, TableTask, bernoulli_cells, marginal_swap, value_head
from sslcore.tasks.base import StepOutput, batched_eval, register_task


@dataclass(frozen=True)
class TabularAutoencoderConfig(TaskConfig):
    corruption: float = param(0.0, "Share of each row's cells corrupted before encoding: 0 = plain autoencoder, "
                              "above 0 = denoising autoencoder.", min=0.0, max=0.9)
    corruption_kind: str = param("marginal", "How a corrupted cell changes: marginal = the value of the same column "
                                 "in a random other row; zero = the column's mean; gaussian = plus noise of one "
                                 "standard deviation.", choices=("marginal", "zero", "gaussian"))
    decoder_hidden: int = param(256, "Hidden units of the decoder.", min=8, max=4096)


@register_task("tabular_autoencoder", "Table rows: encode each row, rebuild every column from the features "
               "(a corruption share makes it a denoising autoencoder)")
class TabularAutoencoder(TableTask):
    Config = TabularAutoencoderConfig
    config: TabularAutoencoderConfig
    display_name = "tabular autoencoder"
    panels = RECONSTRUCTION_PANELS

    def __init__(self, encoder: Encoder, config: TabularAutoencoderConfig, sample_shape: tuple[int, ...]) -> None:
        super().__init__(encoder, config, sample_shape)
        self.decoder = value_head(encoder.feature_dim, config.decoder_hidden, self.columns)

    def corrupt(self, rows: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """(the rows the encoder sees (B, F), the corrupted cells bool (B, F)), in the rows' own units."""
        cells = bernoulli_cells(tuple(rows.shape), self.config.corruption, generator, rows.device)
        if self.config.corruption == 0.0:
            return rows, cells
        if self.config.corruption_kind == "marginal":
            return marginal_swap(rows, cells, generator), cells
        if self.config.corruption_kind == "zero":  # zero in standardised units: the column's train mean
            return torch.where(cells, self.encoder.mean.expand_as(rows), rows), cells
        noise = torch.randn(rows.shape, generator=generator, device=rows.device) * self.encoder.std
        return torch.where(cells, rows + noise, rows), cells

    def forward_pass(self, rows: torch.Tensor, generator: torch.Generator
                     ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(inputs (B, F), cells (B, F), reconstruction (B, F) standardised, error per row (B,))."""
        inputs, cells = self.corrupt(rows, generator)
        reconstruction = self.decoder(self.encoder(inputs)).float()
        error = ((reconstruction - self.standardise(rows)) ** 2).mean(dim=1)
        return inputs, cells, reconstruction, error

    def training_step(self, rows: torch.Tensor, generator: torch.Generator) -> StepOutput:
        return StepOutput(loss=self.forward_pass(rows, generator)[3].mean())

    def make_views(self, rows: torch.Tensor, generator: torch.Generator) -> dict[str, torch.Tensor]:
        inputs, _ = self.corrupt(rows, generator)
        return {"original": rows, "input": inputs}

    def snapshot(self, rows: torch.Tensor, generator: torch.Generator) -> dict[str, np.ndarray]:
        inputs, cells, reconstruction, error = self.forward_pass(rows, generator)
        return {**self.shown(rows, inputs, cells), "reconstruction": reconstruction.cpu().numpy().astype(np.float32),
                "error": error.cpu().numpy().astype(np.float32)}

    def evaluate(self, rows: torch.Tensor, generator: torch.Generator) -> dict[str, float]:
        return batched_eval(lambda x: {"test_recon_mse": self.forward_pass(x, generator)[3]}, rows)
