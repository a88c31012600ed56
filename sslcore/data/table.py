"""Tables as a kind of data: rows of numbers, with what each column is and statistics of the train split.

A loader returns a :class:`RawTable` (numeric cells may be missing, categorical cells are level codes).
Splitting it (:meth:`RawTable.split`) is where everything that must come from the train split only is
fitted: the value that fills a missing cell (the train median), which columns get a missing-indicator
(those with a missing cell in the train split) and the standardisation statistics. The result is a pair
of :class:`TableDataset` holding float32 rows (N, F) with no missing values: numeric columns as given
(imputed), categorical columns one-hot, then the 0/1 missing-indicators. An encoder standardises its
input itself with the train split's mean and std (stored among its weights, as for images), so a saved
table encoder is fed rows like these and nothing else.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch

from sslcore.data.base import DatasetSplit

NUMERIC, CATEGORICAL, MISSING = "numeric", "categorical", "missing"
#: A column whose train-split spread is below this is constant; it is divided by 1, not by ~0.
_MIN_STD = 1e-6


@dataclass(frozen=True)
class TableColumns:
    """What each of the F columns of a table is.

    names: shown names ("alcohol", "colour=red", "age (missing)"); types: "numeric", "categorical" (one
    level of a one-hot column) or "missing" (a 0/1 indicator); sources: the column of the file each one
    comes from; mean, std: float32 (F,) of the train split (std of a constant column is 1).
    """

    names: tuple[str, ...]
    types: tuple[str, ...]
    sources: tuple[str, ...]
    mean: torch.Tensor
    std: torch.Tensor

    def __post_init__(self) -> None:
        f = len(self.names)
        if not (len(self.types) == len(self.sources) == f and self.mean.shape == self.std.shape == (f,)):
            raise ValueError(f"column metadata must all have one entry per column ({f})")

    def __len__(self) -> int:
        return len(self.names)


@dataclass(frozen=True)
class TableDataset:
    """Rows, labels and class names of one split of a table.

    rows: float32 (N, F), finite; labels: int64 (N,) in [0, len(class_names)), or -1 for a row without a
    label (a table read without a target: ``class_names`` is then empty); columns: F entries.
    """

    name: str
    rows: torch.Tensor
    labels: torch.Tensor
    class_names: tuple[str, ...]
    columns: TableColumns
    kind: ClassVar[str] = "table"

    def __post_init__(self) -> None:
        if self.rows.dtype != torch.float32 or self.rows.ndim != 2:
            raise ValueError(f"{self.name}: rows must be float32 (N, F), "
                             f"got {self.rows.dtype} {tuple(self.rows.shape)}")
        if self.rows.shape[1] != len(self.columns):
            raise ValueError(f"{self.name}: {self.rows.shape[1]} columns of values "
                             f"but {len(self.columns)} column names")
        if not bool(torch.isfinite(self.rows).all()):
            raise ValueError(f"{self.name}: rows must be finite (missing values are imputed before this point)")
        if self.labels.dtype != torch.int64 or self.labels.shape != (self.rows.shape[0],):
            raise ValueError(f"{self.name}: labels must be int64 (N,) matching the rows")

    def __len__(self) -> int:
        return self.rows.shape[0]

    @property
    def samples(self) -> torch.Tensor:
        """The rows, float32 (N, F): the kind-neutral name generic code uses."""
        return self.rows

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return (int(self.rows.shape[1]),)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def has_labels(self) -> bool:
        """Whether the rows have labels (a table read without a target column has none)."""
        return self.num_classes > 0

    @property
    def split_groups(self) -> torch.Tensor:
        """int64 (N,): what a stratified split keeps in proportion: the labels."""
        return self.labels

    def labelled(self) -> TableDataset:
        """Only the rows that have a label (all of them, or none for an unlabelled table)."""
        keep = self.labels >= 0
        return self if bool(keep.all()) else self.subset(torch.nonzero(keep).flatten())

    @staticmethod
    def to_input(batch: torch.Tensor) -> torch.Tensor:
        """Rows (B, F) as a fresh float32 tensor: the encoder standardises them itself."""
        return batch.to(torch.float32, copy=True)

    @staticmethod
    def input_stats(samples: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-column mean and std (each (F,)) of rows (N, F); a constant column gets std 1."""
        x = samples.double()
        std = x.std(dim=0) if x.shape[0] > 1 else torch.ones(x.shape[1], dtype=x.dtype)
        return x.mean(dim=0).float(), torch.where(std < _MIN_STD, 1.0, std).float()

    def standardised(self) -> torch.Tensor:
        """(rows - train mean) / train std, float32 (N, F): the columns on one scale, for maps and heat maps."""
        return (self.rows - self.columns.mean) / self.columns.std

    def subset(self, indices: torch.Tensor) -> TableDataset:
        """The rows at ``indices`` (int64 (M,)), in that order; the column statistics are kept."""
        return TableDataset(self.name, self.rows[indices], self.labels[indices], self.class_names, self.columns)

    def split(self, train_idx: torch.Tensor, test_idx: torch.Tensor) -> DatasetSplit:
        """Train and test subsets of an already prepared table (statistics unchanged)."""
        return DatasetSplit(self.subset(train_idx), self.subset(test_idx))


@dataclass(frozen=True)
class RawTable:
    """A table as read, before the split: what a table dataset's loader returns.

    numeric: float64 (N, Fn), NaN where a cell is missing; categorical: int64 (N, Fc) level codes, -1
    where missing, with ``levels[j]`` naming column j's codes; labels: int64 (N,).
    """

    name: str
    numeric: np.ndarray
    numeric_names: tuple[str, ...]
    labels: torch.Tensor
    class_names: tuple[str, ...]
    categorical: np.ndarray | None = None
    categorical_names: tuple[str, ...] = ()
    levels: tuple[tuple[str, ...], ...] = ()
    kind: ClassVar[str] = "table"

    def __post_init__(self) -> None:
        n = self.labels.shape[0]
        if self.numeric.ndim != 2 or self.numeric.shape != (n, len(self.numeric_names)):
            raise ValueError(f"{self.name}: numeric values must be (N, Fn) with one name per column")
        if np.isinf(self.numeric).any():
            raise ValueError(f"{self.name}: numeric values must be finite or NaN (missing)")
        codes = self.codes()
        if codes.shape != (n, len(self.categorical_names)) or len(self.levels) != len(self.categorical_names):
            raise ValueError(f"{self.name}: categorical codes must be (N, Fc) with names and levels per column")

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @property
    def split_groups(self) -> torch.Tensor:
        """int64 (N,): what a stratified split keeps in proportion: the labels."""
        return self.labels

    def codes(self) -> np.ndarray:
        """The categorical codes, int64 (N, Fc) (Fc = 0 without categorical columns)."""
        if self.categorical is None:
            return np.zeros((len(self), 0), dtype=np.int64)
        return self.categorical

    def split(self, train_idx: torch.Tensor, test_idx: torch.Tensor) -> DatasetSplit:
        """Impute, encode and fit the column statistics on ``train_idx`` only; both sides as TableDataset."""
        tr = train_idx.numpy()
        blocks, names, types, sources = self._numeric_block(tr)
        for j, column in enumerate(self.categorical_names):
            block, block_names, block_types = _one_hot(self.codes()[:, j], column, self.levels[j], tr)
            blocks.append(block)
            names += block_names
            types += block_types
            sources += [column] * len(block_names)
        matrix = np.concatenate(blocks, axis=1) if blocks else np.zeros((len(self), 0))
        if matrix.shape[1] == 0:
            raise ValueError(f"{self.name}: the table has no columns to learn from")
        mean, std = TableDataset.input_stats(torch.from_numpy(matrix[tr]))
        columns = TableColumns(tuple(names), tuple(types), tuple(sources), mean, std)
        rows = torch.from_numpy(matrix.astype(np.float32))

        def side(idx: torch.Tensor) -> TableDataset:
            return TableDataset(self.name, rows[idx], self.labels[idx], self.class_names, columns)

        return DatasetSplit(side(train_idx), side(test_idx))

    def _numeric_block(self, tr: np.ndarray) -> tuple[list[np.ndarray], list[str], list[str], list[str]]:
        """Numeric columns imputed with their train median, plus an indicator for each that misses in train."""
        values = self.numeric
        missing = np.isnan(values)
        with warnings.catch_warnings():  # a column missing in every train row: filled with 0 below
            warnings.simplefilter("ignore", RuntimeWarning)
            fill = np.nanmedian(values[tr], axis=0) if len(tr) else np.zeros(values.shape[1])
        fill = np.where(np.isnan(fill), 0.0, fill)
        flagged = np.flatnonzero(missing[tr].any(axis=0))
        names = list(self.numeric_names) + [f"{self.numeric_names[j]} (missing)" for j in flagged]
        types = [NUMERIC] * values.shape[1] + [MISSING] * len(flagged)
        sources = list(self.numeric_names) + [self.numeric_names[j] for j in flagged]
        blocks = [np.where(missing, fill, values), missing[:, flagged].astype(np.float64)]
        return blocks, names, types, sources


def _one_hot(codes: np.ndarray, column: str, levels: tuple[str, ...],
             tr: np.ndarray) -> tuple[np.ndarray, list[str], list[str]]:
    """One 0/1 column per level of ``codes`` (N,), plus a missing-indicator if a train cell is missing."""
    block = (codes[:, None] == np.arange(len(levels))[None, :]).astype(np.float64)
    names, types = [f"{column}={level}" for level in levels], [CATEGORICAL] * len(levels)
    if (codes[tr] < 0).any():
        block = np.concatenate([block, (codes < 0)[:, None].astype(np.float64)], axis=1)
        names.append(f"{column} (missing)")
        types.append(MISSING)
    return block, names, types


def numeric_table(name: str, values: np.ndarray, labels: np.ndarray, column_names: tuple[str, ...],
                  class_names: tuple[str, ...]) -> RawTable:
    """A table of numeric columns only (values (N, F), labels (N,) integer): the embedded datasets."""
    return RawTable(name, np.asarray(values, dtype=np.float64), tuple(str(c) for c in column_names),
                    torch.from_numpy(np.asarray(labels).astype(np.int64)), tuple(str(c) for c in class_names))
