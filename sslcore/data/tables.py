"""Embedded tables from scikit-learn: no files, no download.

``wine`` (178 rows, 13 chemical measurements, 3 cultivars), ``breast_cancer`` (569 rows, 30 measurements of
cell nuclei, malignant or benign) and ``digits_table`` (the 1,797 8×8 digits read as 64 pixel columns, so
a table task can be compared with an image task on the same data). None has an official split, so
:func:`sslcore.data.load_dataset` makes a seeded stratified one and fits the column statistics on its
train side. scikit-learn is imported inside the loaders so that importing sslcore stays fast.
"""
from __future__ import annotations

from pathlib import Path

from sslcore.data.embedded import DIGIT_NAMES
from sslcore.data.registry import register_dataset
from sslcore.data.table import RawTable, numeric_table


@register_dataset("wine", "scikit-learn's wine recognition table (178 rows × 13 columns, 3 cultivars); embedded",
                  embedded=True, official_split=False, kind="table", sample_shape=(13,))
def load_wine(root: Path, download: bool) -> RawTable:
    """sklearn ``load_wine``: 13 numeric columns (alcohol, malic acid, ...), 3 classes."""
    from sklearn.datasets import load_wine as sklearn_load_wine

    bunch = sklearn_load_wine()
    return numeric_table("wine", bunch.data, bunch.target, tuple(bunch.feature_names), tuple(bunch.target_names))


@register_dataset("breast_cancer", "scikit-learn's breast cancer table (569 rows × 30 columns, malignant or "
                  "benign); embedded", embedded=True, official_split=False, kind="table", sample_shape=(30,))
def load_breast_cancer(root: Path, download: bool) -> RawTable:
    """sklearn ``load_breast_cancer``: 30 numeric columns (mean radius, ...), 2 classes."""
    from sklearn.datasets import load_breast_cancer as sklearn_load_breast_cancer

    bunch = sklearn_load_breast_cancer()
    return numeric_table("breast_cancer", bunch.data, bunch.target, tuple(bunch.feature_names),
                         tuple(bunch.target_names))


@register_dataset("digits_table", "scikit-learn's 8×8 digits as a table of 64 pixel columns (1,797 rows, "
                  "10 classes); embedded", embedded=True, official_split=False, kind="table", sample_shape=(64,))
def load_digits_table(root: Path, download: bool) -> RawTable:
    """sklearn ``load_digits`` flattened: column ``px_r_c`` is the grey level (0..16) of row r, column c."""
    from sklearn.datasets import load_digits as sklearn_load_digits

    bunch = sklearn_load_digits()
    names = tuple(f"px_{r}_{c}" for r in range(8) for c in range(8))
    return numeric_table("digits_table", bunch.data, bunch.target, names, DIGIT_NAMES)
