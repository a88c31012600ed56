"""What the pretext tasks for table rows share: which cells to corrupt, and corruption from the marginals.

Rows arrive as the table dataset holds them, float (B, F), and the encoder standardises them itself; the
tasks compare values in standardised units (``encoder.normalise``), so every column weighs the same in a
loss whatever its scale. Corruption is a batched tensor operation on the training device: one random row
index per cell, gathered in one call; there is no Python loop over rows or cells.

Snapshots of table tasks hold standardised values, float32 (N, F): ``original``, ``input`` (what the
encoder saw), ``masked`` (bool (N, F): the cells chosen for corruption), plus the task's own arrays; the
Reconstructions & views page draws them as heat maps (see :data:`RECONSTRUCTION_PANELS`).
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from sslcore.config_schema import TaskConfig
from sslcore.models import Encoder
from sslcore.pairing import TABLE, DataRequirements
from sslcore.tasks.base import PretextTask
from sslcore.tasks.panels import ImageColumn, SnapshotPanels, Summary, Value

#: What the viewer draws of a table task that rebuilds rows: heat maps of a few test rows (original, what the
#: encoder saw with the corrupted cells outlined, the rebuilt values) and the error of each column.
RECONSTRUCTION_PANELS = SnapshotPanels(
    images=(),
    rows=(ImageColumn("original", "original"), ImageColumn("input", "corrupted input", hide_if_same_as="original"),
          ImageColumn("reconstruction", "reconstruction")),
    marked="masked", column_error=("original", "reconstruction"),
    values=(Value("error", "error", "{:.4f}", higher_is_better=False),),
    caption="error {error:.4f}",
    worst_first="error", worst_label="Worst rebuilt rows first",
    summary=Summary("error", "Mean reconstruction error", axis="error", fmt="{:.4f}"),
    explanation="Each row of a heat map is one test row, each column one column of the table, in standard "
                "deviations from the train mean. The model has to rebuild the original row from its features; "
                "the error is the mean squared difference over all cells, and the bars show it per column: a "
                "column the others explain is rebuilt well, a column of pure noise cannot be.")

def bernoulli_cells(shape: tuple[int, ...], rate: float, generator: torch.Generator,
                    device: torch.device) -> torch.Tensor:
    """bool (B, F): each cell independently True with probability ``rate`` (VIME's mask)."""
    return torch.rand(shape, generator=generator, device=device) < rate


def exact_cells(shape: tuple[int, ...], rate: float, generator: torch.Generator, device: torch.device) -> torch.Tensor:
    """bool (B, F): in every row exactly round(rate * F) cells True, a random subset per row (SCARF's corruption)."""
    b, f = shape
    count = int(round(rate * f))
    # The rank of each cell in a random order of its row: the cells ranked below ``count`` are chosen.
    ranks = torch.rand(shape, generator=generator, device=device).argsort(dim=1).argsort(dim=1)
    return ranks < count


def marginal_swap(rows: torch.Tensor, cells: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """``rows`` (B, F) with each chosen cell (``cells`` bool (B, F)) replaced by its column's value in a random
    row of the batch: a draw from the column's empirical marginal, which keeps every value plausible on its own
    while breaking its relation to the rest of the row (Yoon et al. 2020; Bahri et al. 2022)."""
    b, f = rows.shape
    donors = torch.randint(0, b, (b, f), generator=generator, device=rows.device)
    return torch.where(cells, rows.gather(0, donors), rows)


def value_head(in_dim: int, hidden: int, out_dim: int) -> nn.Sequential:
    """Linear-ReLU-Linear, (B, in_dim) -> (B, out_dim): a decoder or per-column predictor on the features."""
    return nn.Sequential(nn.Linear(in_dim, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, out_dim))


class TableTask(PretextTask):
    """Base of the table tasks: accepts table data only; ``columns`` is F."""

    requires = DataRequirements(kinds=(TABLE,))

    def __init__(self, encoder: Encoder, config: TaskConfig, sample_shape: tuple[int, ...]) -> None:
        super().__init__(encoder, config, sample_shape)
        self.columns = int(sample_shape[0])

    def standardise(self, rows: torch.Tensor) -> torch.Tensor:
        """Rows (B, F) in the units the encoder sees them: (x - train mean) / train std."""
        return self.encoder.normalise(rows.float())

    def shown(self, rows: torch.Tensor, inputs: torch.Tensor, cells: torch.Tensor) -> dict[str, np.ndarray]:
        """The snapshot arrays every table task has: standardised original and input, and the corrupted cells."""
        return {"original": self.standardise(rows).cpu().numpy().astype(np.float32),
                "input": self.standardise(inputs).cpu().numpy().astype(np.float32),
                "masked": cells.cpu().numpy()}
