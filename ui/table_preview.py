"""Tables as the Train page shows them: the first rows, the column types, the class balance, and what a
pretext task does to a few rows (the cells it changes highlighted).

The frame builders are pure functions of a :class:`~sslcore.data.TableDataset` (tested without a page);
the two ``draw_*`` functions put them on the page. Nothing here trains or writes anything.
"""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import streamlit as st
import torch
from pandas.io.formats.style import Styler

from sslcore.config import config_from_dict
from sslcore.data import DatasetSplit, TableDataset
from sslcore.engine.preview import preview_views
from ui.datasets import load_config_split

PREVIEW_ROWS = 8
#: Background of a cell the pretext task changed (the app's accent, light enough for dark text).
CHANGED_STYLE = "background-color: #ffd8a8; font-weight: 600"
TYPE_WORDS = {"numeric": "numeric", "categorical": "category level (one-hot)", "missing": "missing-indicator (0/1)"}


def rows_frame(data: TableDataset, indices: torch.Tensor | None = None, rows: np.ndarray | None = None) -> pd.DataFrame:
    """Rows as a frame: one column per table column, the class as the first column, the row id as index.

    ``rows`` (M, F) replaces the dataset's values at ``indices`` (e.g. a corrupted copy of them).
    """
    indices = torch.arange(min(PREVIEW_ROWS, len(data))) if indices is None else indices
    values = data.rows[indices].numpy() if rows is None else np.asarray(rows)
    frame = pd.DataFrame(values, columns=list(data.columns.names), index=pd.Index(indices.tolist(), name="row"))
    names = data.class_names
    frame.insert(0, "class", [names[int(y)] if names else "—" for y in data.labels[indices]])
    return frame


def column_summary(data: TableDataset) -> pd.DataFrame:
    """One line per column: its name, what it is, the file column it comes from, train mean and std."""
    c = data.columns
    return pd.DataFrame({"column": list(c.names), "type": [TYPE_WORDS.get(t, t) for t in c.types],
                         "from": list(c.sources), "train mean": c.mean.numpy(), "train std": c.std.numpy()})


def class_balance(split: DatasetSplit) -> pd.DataFrame:
    """Rows per class in the train and test splits."""
    k = len(split.class_names)
    return pd.DataFrame({"class": list(split.class_names),
                         "train rows": torch.bincount(split.train.labels, minlength=k).tolist(),
                         "test rows": torch.bincount(split.test.labels, minlength=k).tolist()})


def facts_line(split: DatasetSplit) -> str:
    """'**16,000** training + **4,000** test rows · **4** classes · **32** columns (32 numeric)'."""
    types = split.as_tables()[0].columns.types
    parts = [f"{types.count(t)} {word}" for t, word in (("numeric", "numeric"), ("categorical", "category levels"),
                                                       ("missing", "missing-indicators")) if types.count(t)]
    return (f"**{len(split.train):,}** training + **{len(split.test):,}** test rows · "
            f"**{len(split.class_names)}** classes · **{len(types)}** columns ({', '.join(parts)})")


def changed_cells(original: np.ndarray, shown: np.ndarray) -> np.ndarray:
    """bool (M, F): the cells whose value differs between two views of the same rows."""
    return ~np.isclose(np.asarray(original), np.asarray(shown), rtol=1e-6, atol=1e-9)


def highlighted(frame: pd.DataFrame, changed: np.ndarray) -> Styler:
    """``frame`` with the ``changed`` (M, F) cells highlighted (the first column, the class, never is)."""
    marks = np.concatenate([np.zeros((len(frame), 1), bool), changed], axis=1)
    styles = pd.DataFrame(np.where(marks, CHANGED_STYLE, ""), index=frame.index, columns=frame.columns)
    return frame.style.apply(lambda _: styles, axis=None).format(precision=3, subset=frame.columns[1:])


@st.cache_data(max_entries=32, show_spinner=False)
def task_rows(config_json: str, count: int, seed: int) -> tuple[list[int], dict[str, np.ndarray]]:
    """What the model would be shown for ``count`` test rows: (their ids, view name -> float32 (count, F)).

    The task is built exactly as a run builds it, so a combination it refuses raises its ConfigError here.
    """
    config = config_from_dict(json.loads(config_json))
    indices, views = preview_views(config, load_config_split(config.data), count, seed)
    return indices.tolist(), {name: batch.numpy().astype(np.float32) for name, batch in views.items()}


def draw_table_data(split: DatasetSplit) -> None:
    """Facts, the first test rows, the column types and the class balance of a table dataset."""
    train, test = split.as_tables()
    st.markdown(facts_line(split))
    st.caption("First test rows, as the model is fed them (missing cells imputed with the train median):")
    st.dataframe(rows_frame(test).style.format(precision=3, subset=list(test.columns.names)))
    types, balance = st.columns([3, 2])
    with types.expander("Column types"):
        st.dataframe(column_summary(train), hide_index=True)
    with balance.expander("Class balance"):
        st.dataframe(class_balance(split), hide_index=True)


def draw_task_rows(data: TableDataset, indices: list[int], views: dict[str, np.ndarray]) -> None:
    """Each view of the same test rows, with the cells that differ from the original highlighted."""
    index = torch.tensor(indices)
    original = views.get("original", data.rows[index].numpy())
    for name, rows in views.items():
        changed = changed_cells(original, rows)
        share = f" · {changed.mean():.0%} of cells changed" if name != "original" else ""
        st.caption(f"{name}{share}")
        st.dataframe(highlighted(rows_frame(data, index, rows), changed))
