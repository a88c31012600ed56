"""``synthetic_table``: a seeded generator of rows with informative, redundant and noise columns.

The rows come from a few hidden causes, as real tables often do. Each class is a mixture of
``SUBCLUSTERS`` clusters in a small latent space, placed at random, so classes interleave and no straight
line separates them. The informative columns are a fixed random non-linear function of the latent point
(a small tanh network); the redundant columns are random mixtures of the informative ones; the noise
columns are independent of everything. Every column then gets observation noise and its own scale and
offset (so standardising matters). Unlabelled rows thus carry the structure a few labels cannot show:
which rows lie on the same cluster. The data are a pure function of the row count, the column count and
the noise level (the generator's seed is fixed), so a run records everything needed to rebuild them.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from sslcore.data.registry import register_dataset
from sslcore.data.table import RawTable, numeric_table

CLASSES = 4
SUBCLUSTERS = 3
LATENT_DIM = 6
#: Spread of the cluster centres against the unit spread of a cluster around its centre.
CENTRE_SPREAD = 2.2
SEED = 20240612


def column_counts(columns: int) -> tuple[int, int, int]:
    """(informative, redundant, noise) columns out of ``columns`` (>= 4): a quarter each informative and
    redundant (at least 2 and 1), the rest noise."""
    informative = max(2, columns // 4)
    redundant = max(1, columns // 4)
    return informative, redundant, columns - informative - redundant


def make_synthetic_table(rows: int, columns: int, noise: float, seed: int = SEED) -> tuple[np.ndarray, np.ndarray]:
    """Values float64 (rows, columns) and labels int64 (rows,) in [0, CLASSES), classes balanced.

    ``noise`` is the standard deviation of the Gaussian noise added to every (unit-scale) column before
    its scale and offset are applied.
    """
    rng = np.random.default_rng(seed)
    informative, redundant, n_noise = column_counts(columns)
    centres = rng.normal(0.0, CENTRE_SPREAD, size=(CLASSES * SUBCLUSTERS, LATENT_DIM))
    cluster = rng.permutation(np.arange(rows) % (CLASSES * SUBCLUSTERS))
    labels = cluster % CLASSES  # cluster k belongs to class k mod CLASSES: balanced classes, 3 clusters each
    latent = centres[cluster] + rng.normal(size=(rows, LATENT_DIM))
    weights = rng.normal(0.0, 0.6, size=(LATENT_DIM, 4 * informative))
    hidden = np.tanh(latent @ weights + rng.normal(size=4 * informative))
    signal = hidden @ rng.normal(0.0, 1.0 / np.sqrt(4 * informative), size=(4 * informative, informative))
    signal = (signal - signal.mean(0)) / signal.std(0)
    mixed = signal @ rng.normal(size=(informative, redundant)) / np.sqrt(informative)
    values = np.concatenate([signal, mixed, rng.normal(size=(rows, n_noise))], axis=1)
    values = values + noise * rng.normal(size=values.shape)
    order = rng.permutation(columns)  # informative, redundant and noise columns interleaved, as in real tables
    scale = 10.0 ** rng.uniform(-1.0, 2.0, size=columns)
    offset = rng.normal(0.0, 5.0, size=columns) * scale
    return values[:, order] * scale + offset, labels.astype(np.int64)


@register_dataset("synthetic_table", "Generated rows: 4 classes of interleaved clusters, informative, redundant "
                  "and noise columns (row count, column count and noise are data settings); embedded",
                  embedded=True, official_split=False, kind="table",
                  options=("synthetic_rows", "synthetic_columns", "synthetic_noise"))
def load_synthetic_table(root: Path, download: bool, synthetic_rows: int = 20_000, synthetic_columns: int = 32,
                         synthetic_noise: float = 0.5) -> RawTable:
    """:func:`make_synthetic_table` as a table with columns ``c00``, ``c01``, ... and classes ``A`` to ``D``."""
    values, labels = make_synthetic_table(synthetic_rows, synthetic_columns, synthetic_noise)
    names = tuple(f"c{j:02d}" for j in range(synthetic_columns))
    return numeric_table("synthetic_table", values, labels, names, tuple("ABCD"[:CLASSES]))
