"""SCARF (Bahri et al. 2022): contrastive learning on rows, with random feature corruption as the view.

For each row, a copy has a random ``corruption_rate`` share of its cells replaced by the values of the
same columns in random other rows (draws from the columns' empirical marginals). The row and its
corrupted copy must map close together and away from every other row of the batch (InfoNCE, here the
symmetric NT-Xent of SimCLR on a projection head). What survives the corruption, the joint structure of
the columns, is what the features must capture. Features are taken before the projection head.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from sslcore.config_schema import TaskConfig, param
from sslcore.losses import nt_xent_loss
from sslcore.models import Encoder, projection_mlp
from sslcore.tasks._table import TableTask, exact_cells, marginal_swap
from sslcore.tasks.base import StepOutput, register_task
from sslcore.tasks.panels import ImageColumn, SnapshotPanels, Summary, Value


@dataclass(frozen=True)
class SCARFConfig(TaskConfig):
    corruption_rate: float = param(0.6, "Share of each row's cells replaced from their columns' marginals in the "
                                   "corrupted copy.", min=0.05, max=0.95)
    temperature: float = param(1.0, "Softmax temperature of the contrastive loss (the paper uses 1).", min=0.01,
                               max=10.0)
    projection_dim: int = param(128, "Output size of the projection head.", min=8, max=4096)
    projection_hidden: int = param(256, "Hidden units of the projection head.", min=8, max=8192)


@register_task("scarf", "Table rows: a row and a copy with random cells replaced from the columns' marginals must "
               "match each other, not other rows (SCARF, InfoNCE)")
class SCARF(TableTask):
    Config = SCARFConfig
    config: SCARFConfig
    display_name = "SCARF"
    panels = SnapshotPanels(
        images=(), rows=(ImageColumn("original", "original"), ImageColumn("input", "corrupted copy")), marked="masked",
        values=(Value("pair_similarity", "similarity", "{:.2f}", higher_is_better=True),),
        caption="similarity {pair_similarity:.2f}",
        worst_first="pair_similarity", worst_label="Least similar pairs first",
        summary=Summary("pair_similarity", "Mean pair similarity", axis="similarity", fmt="{:.3f}", judged=False),
        explanation="Each heat-map row is one test row in standard deviations from the train mean, and below it "
                    "the copy the model is shown as its partner: a share of its cells (outlined) replaced by the "
                    "same column's value in random other rows. The model is trained to give a row and its copy the "
                    "same features and other rows different ones; similarity is the cosine between the encoder "
                    "features of the two (1 = identical).")

    def __init__(self, encoder: Encoder, config: SCARFConfig, sample_shape: tuple[int, ...]) -> None:
        super().__init__(encoder, config, sample_shape)
        self.projector = projection_mlp(encoder.feature_dim, config.projection_hidden, config.projection_dim)

    def corrupt(self, rows: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """(the corrupted copy (B, F), its replaced cells bool (B, F))."""
        cells = exact_cells(tuple(rows.shape), self.config.corruption_rate, generator, rows.device)
        return marginal_swap(rows, cells, generator), cells

    def pair_loss(self, rows: torch.Tensor, corrupted: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # One encoder pass over both: BatchNorm sees one batch, and it is faster.
        z = self.projector(self.encoder(torch.cat([rows, corrupted])))
        z1, z2 = z.chunk(2)
        return nt_xent_loss(z1, z2, temperature=self.config.temperature)

    def training_step(self, rows: torch.Tensor, generator: torch.Generator) -> StepOutput:
        corrupted, _ = self.corrupt(rows, generator)
        loss, accuracy = self.pair_loss(rows, corrupted)
        return StepOutput(loss=loss, metrics={"pair_acc": accuracy})

    def two_views(self, rows: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """The row and its corrupted copy: what the loss pulls together (for the collapse diagnostics)."""
        return rows, self.corrupt(rows, generator)[0]

    def projection(self, features: torch.Tensor) -> torch.Tensor:
        return self.projector(features)

    def make_views(self, rows: torch.Tensor, generator: torch.Generator) -> dict[str, torch.Tensor]:
        corrupted, _ = self.corrupt(rows, generator)
        return {"original": rows, "input": corrupted}

    def snapshot(self, rows: torch.Tensor, generator: torch.Generator) -> dict[str, np.ndarray]:
        corrupted, cells = self.corrupt(rows, generator)
        h = F.normalize(self.encoder(torch.cat([rows, corrupted])).float(), dim=1)
        h1, h2 = h.chunk(2)
        return {**self.shown(rows, corrupted, cells), "pair_similarity": (h1 * h2).sum(dim=1).cpu().numpy()}

    def view_metrics(self, view1: torch.Tensor, view2: torch.Tensor) -> dict[str, float]:
        """test_pair_acc: the share of the 2N held-out rows and copies that pick their partner among the 2N - 1
        others (the monitor's embeddings of :meth:`two_views`); test_loss: their NT-Xent loss."""
        loss, accuracy = nt_xent_loss(view1, view2, temperature=self.config.temperature)
        return {"test_loss": float(loss), "test_pair_acc": float(accuracy)}
