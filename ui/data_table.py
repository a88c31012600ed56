"""Adding a CSV table on the Data page: its columns, the target and type overrides, and the preview.

The CSV is parsed by the same worker process as an image import (``python -m sslcore data stage table.csv``),
never in the Streamlit server; the page reads only the header line here, to offer the columns. The upload
is written inside the datasets folder (hidden) and deleted once parsed. The preview reads the staged arrays:
the stored columns as read (missing cells are imputed only when a run splits the table, on its train part).
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from sslcore.userdata import store, summary
from ui.data_import import class_table
from ui.plain_text import escape_markdown

NO_TARGET = "(none: unlabelled)"
PREVIEW_ROWS = 10


@dataclass(frozen=True)
class TableChoices:
    """What the person chose for a CSV: the label column (None = unlabelled) and the type overrides."""

    target: str | None
    categorical: tuple[str, ...]
    numeric: tuple[str, ...]
    drop: tuple[str, ...]

    def args(self) -> list[str]:
        """The worker's command-line options for these choices."""
        out = ["--target", self.target] if self.target else []
        for flag, names in (("--categorical", self.categorical), ("--numeric", self.numeric), ("--drop", self.drop)):
            out += [flag, ",".join(names)] if names else []
        return out


def header_columns(data: bytes) -> tuple[list[str], str | None]:
    """(the column names of the CSV's first line, None) or ([], why they cannot be read)."""
    first = data.split(b"\n", 1)[0][:65536]
    try:
        text = first.decode("utf-8-sig")
    except UnicodeDecodeError:
        return [], "its first line is not UTF-8 text; save the file as UTF-8 CSV"
    delimiter = max(",;\t", key=text.count)
    names = [c.strip() for c in next(csv.reader(io.StringIO(text), delimiter=delimiter), [])]
    return (names, None) if any(names) else ([], "its first line holds no column names")


def choose_columns(columns: list[str]) -> TableChoices:
    """Widgets: the target column and which columns to treat as categories, numbers, or leave out."""
    target = st.selectbox("Target column (the labels)", [NO_TARGET, *columns], key="data.csv.target",
                          help="Its values become the classes; without one the table is stored unlabelled.")
    rest = [c for c in columns if c != target]
    left, middle, right = st.columns(3)
    categorical = left.multiselect("Treat as categories", rest, key="data.csv.categorical",
                                   help="Columns of codes that are not amounts (a postcode, a product id).")
    numeric = middle.multiselect("Treat as numbers", [c for c in rest if c not in categorical], key="data.csv.numeric",
                                 help="Normally detected: a column is numeric when every filled cell is a number.")
    drop = right.multiselect("Leave out", [c for c in rest if c not in categorical + numeric], key="data.csv.drop",
                             help="An identifier, free text: columns that should not be learned from.")
    return TableChoices(None if target == NO_TARGET else target, tuple(categorical), tuple(numeric), tuple(drop))


def first_rows(samples: np.ndarray, labels: np.ndarray, manifest: dict[str, Any]) -> pd.DataFrame:
    """The first stored rows with their column names, category levels by name and the class (user text)."""
    columns = manifest["columns"]
    frame = pd.DataFrame({c["name"]: _column_values(samples[:PREVIEW_ROWS, j], c) for j, c in enumerate(columns)})
    names = manifest["class_names"]
    frame.insert(0, "class", [names[y] if 0 <= y < len(names) else "—" for y in labels[:PREVIEW_ROWS]])
    return frame


def _column_values(values: np.ndarray, column: dict[str, Any]) -> list[Any]:
    if column["type"] != "categorical":
        return [None if np.isnan(v) else float(v) for v in values]
    levels = column.get("levels", [])
    return [levels[int(v)] if 0 <= v < len(levels) else None for v in values]


def show_table_preview(folder: Path) -> dict[str, Any]:
    """Headline, rows per class and split, the first rows, the column types and notes; returns the manifest."""
    manifest = store.read_manifest(folder)
    samples, labels, strata = store.load_arrays(folder, manifest)
    st.markdown(escape_markdown(summary.headline(manifest, labels, strata)))
    left, right = st.columns([2, 3])
    left.dataframe(class_table(manifest, labels, strata), hide_index=True)
    types = pd.DataFrame({"column": [c["name"] for c in manifest["columns"]],
                          "type": [c["type"] for c in manifest["columns"]],
                          "missing cells": [int(np.isnan(samples[:, j]).sum()) if c["type"] == "numeric"
                                            else int((samples[:, j] < 0).sum())
                                            for j, c in enumerate(manifest["columns"])]})
    right.dataframe(types, hide_index=True)
    st.caption("The first rows as stored (empty cells are filled with the train median, and flagged, when a run "
               "splits the table):")
    st.dataframe(first_rows(samples, labels, manifest), hide_index=True)
    for note in manifest.get("notes", []):
        st.info(escape_markdown(note), icon=":material/info:")
    return manifest
