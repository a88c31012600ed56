"""The nearest-neighbour strip of the Embeddings page: a chosen image, then its k nearest neighbours.

Pure numpy: the page passes the strip to ``st.image`` (a list of pictures with one caption each).
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import pandas as pd

from sslcore.evaluation.embedding_quality import nearest_neighbours
from ui.embedding_map import class_name
from ui.images import image_grid
from ui.plain_text import escape_markdown

#: Neighbours shown per strip.
K = 8


class Strip(NamedTuple):
    """The query image first, then its neighbours nearest first."""

    positions: list[int]  # rows of the shown points: the query, then K neighbours
    pictures: list[np.ndarray]  # each (H', W) or (H', W', 3) uint8, enlarged with square pixels
    captions: list[str]
    same_label: int  # how many neighbours share the query's label


def neighbour_strip(features: np.ndarray, images: np.ndarray, labels: np.ndarray, class_names: Sequence[str],
                    query: int, k: int = K) -> Strip:
    """The ``k`` nearest neighbours of row ``query`` of ``features`` (N, D) in cosine distance, as a strip.

    images: uint8 (N, C, H, W); labels: int (N,). Captions give each image's label, and for a neighbour
    its cosine distance to the query (0 = same direction, 1 = unrelated, 2 = opposite).
    """
    if not 0 <= query < len(features):
        raise ValueError(f"query must be a row of the {len(features)} points, got {query}")
    found, distances = nearest_neighbours(features, query, k)
    positions = [int(query), *found.tolist()]
    pictures = [image_grid(images[i:i + 1], columns=1) for i in positions]
    names = [escape_markdown(class_name(class_names, int(labels[i]))) for i in positions]  # captions render Markdown
    captions = [f"query: {names[0]}"] + [f"{name} · d={d:.3f}"
                                         for name, d in zip(names[1:], distances.tolist(), strict=True)]
    same = int(np.sum(labels[found] == labels[query]))
    return Strip(positions, pictures, captions, same)


def neighbour_rows(features: np.ndarray, rows: np.ndarray, labels: np.ndarray, class_names: Sequence[str],
                   column_names: Sequence[str], ids: np.ndarray, query: int, k: int = K) -> tuple[pd.DataFrame, int]:
    """A table's neighbour strip: the query row, then its ``k`` nearest rows in ``features`` (N, D), as a frame.

    rows: the shown rows' values (N, F); ids: each row's id in its split (N,). Returns (the frame: row id,
    class, cosine distance, then the columns; how many neighbours share the query's label).
    """
    if not 0 <= query < len(features):
        raise ValueError(f"query must be a row of the {len(features)} points, got {query}")
    found, distances = nearest_neighbours(features, query, k)
    positions = [int(query), *found.tolist()]
    frame = pd.DataFrame(np.asarray(rows)[positions], columns=list(column_names))
    frame.insert(0, "distance", [0.0, *distances.tolist()])
    frame.insert(0, "class", [class_name(class_names, int(labels[i])) for i in positions])
    frame.insert(0, "row", [f"#{int(ids[i])}" + (" (query)" if n == 0 else "") for n, i in enumerate(positions)])
    return frame, int(np.sum(labels[found] == labels[query]))
