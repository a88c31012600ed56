"""A person's own CSV file as a table: parsing, column types, missing values and the target column.

The file is untrusted input. It is size-capped before it is read, must be UTF-8 text, and is parsed with
Python's ``csv`` module: nothing in a cell is ever evaluated (a spreadsheet formula such as ``=cmd|...``
is just text, kept as a category level). Every refusal is a :class:`CSVError` with one line naming the
column, the line of the file, the value and what is allowed; parsing writes nothing anywhere.

Column types are detected (numeric when every non-missing cell is a finite number, categorical otherwise)
and can be overridden. Missing cells (empty, ``NA``, ``N/A``, ``null``, ``None``, ``?``) are allowed;
they are imputed, with a missing-indicator, when the table is split (statistics of the train split only,
see :class:`sslcore.data.table.RawTable`). Literal ``nan`` and ``inf`` are refused: they are what a
broken export writes, not a value. Without a target column the table is unlabelled.
"""
from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from sslcore.data.table import RawTable

#: Largest CSV file read, in bytes (checked before reading).
MAX_BYTES = 100 * 2**20
MAX_ROWS = 1_000_000
MAX_COLUMNS = 2_000
#: Most distinct values a categorical column (or the target) may have.
MAX_LEVELS = 50
MISSING_TOKENS = frozenset({"", "na", "n/a", "null", "none", "?"})
_NON_FINITE = frozenset({"nan", "+nan", "-nan", "inf", "+inf", "-inf", "infinity", "+infinity", "-infinity"})
_FORMULA_START = ("=", "+", "-", "@")


class CSVError(ValueError):
    """A CSV file that cannot be used as a table; the message is one line saying what and where."""


@dataclass(frozen=True)
class ParsedCSV:
    """A parsed CSV: the table (labels all -1 and no class names when unlabelled), the column types chosen
    (name -> "numeric" | "categorical"), the target column (None = unlabelled), each row's line in the file
    and notes for the person."""

    table: RawTable
    types: dict[str, str]
    target: str | None
    lines: list[int] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def labelled(self) -> bool:
        return self.target is not None


def read_csv_table(source: Path | bytes, *, name: str, target: str | None = None, categorical: Iterable[str] = (),
                   numeric: Iterable[str] = (), drop: Iterable[str] = (), max_bytes: int = MAX_BYTES) -> ParsedCSV:
    """Parse ``source`` (a file or its bytes) into a table named ``name``; CSVError for anything unusable.

    target: the label column (None: unlabelled). categorical / numeric: columns whose detected type is
    overridden. drop: columns left out (an identifier, free text).
    """
    header, rows, lines = _rows(_text(source, max_bytes))
    wanted = {"target": [target] if target else [], "categorical": list(categorical), "numeric": list(numeric),
              "drop": list(drop)}
    for option, names in wanted.items():
        for column in names:
            if column not in header:
                raise CSVError(f"{option} column {column!r} is not in the file; its columns are: {_listing(header)}")
    both = set(wanted["categorical"]) & set(wanted["numeric"])
    if both:
        raise CSVError(f"column {sorted(both)[0]!r} cannot be both categorical and numeric")
    columns = {c: [r[i] for r in rows] for i, c in enumerate(header) if c not in set(wanted["drop"])}
    labels, class_names = (_target(columns.pop(target), target, lines) if target
                           else (np.full(len(rows), -1, np.int64), ()))
    types, notes = {}, []
    numeric_values, numeric_names, codes, cat_names, levels = [], [], [], [], []
    for column, cells in columns.items():
        kind = _column_type(column, cells, set(wanted["categorical"]), set(wanted["numeric"]))
        types[column] = kind
        if kind == "numeric":
            numeric_values.append(_numbers(column, cells, lines))
            numeric_names.append(column)
        else:
            column_codes, column_levels, note = _categories(column, cells)
            codes.append(column_codes)
            cat_names.append(column)
            levels.append(column_levels)
            notes += [note] if note else []
    if not numeric_names:
        raise CSVError(f"the file has no numeric column (columns: {_listing(list(columns)) or 'none but the target'}); "
                       "a table needs at least one column of numbers")
    table = RawTable(name, np.stack(numeric_values, axis=1), tuple(numeric_names), torch.from_numpy(labels),
                     class_names, np.stack(codes, axis=1) if codes else None, tuple(cat_names), tuple(levels))
    return ParsedCSV(table, types, target, lines, notes)


def _text(source: Path | bytes, max_bytes: int) -> str:
    size = source.stat().st_size if isinstance(source, Path) else len(source)
    if size > max_bytes:
        raise CSVError(f"the file is {size / 2**20:,.1f} MiB: larger than the {max_bytes / 2**20:g} MiB allowed")
    data = source.read_bytes() if isinstance(source, Path) else source
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[:e.start].count(b"\n") + 1
        raise CSVError(f"the file is not UTF-8 text: byte 0x{data[e.start]:02x} on line {line} cannot be decoded; "
                       "save it as UTF-8 CSV") from None


def _rows(text: str) -> tuple[list[str], list[list[str]], list[int]]:
    """Header (names), data rows (every row as long as the header) and each row's line in the file."""
    try:
        dialect = csv.Sniffer().sniff(text[:65536], delimiters=",;\t")
        delimiter = dialect.delimiter
    except csv.Error:
        delimiter = ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        lines = [(reader.line_num, row) for row in reader if any(cell.strip() for cell in row)]
    except csv.Error as e:
        raise CSVError(f"the file is not valid CSV: {e} (near line {reader.line_num})") from None
    if not lines:
        raise CSVError("the file is empty: expected a header line and at least 2 rows")
    header = [cell.strip() for cell in lines[0][1]]
    _check_header(header)
    rows, numbers = [], []
    for number, row in lines[1:]:
        if len(row) != len(header):
            raise CSVError(f"line {number} has {len(row)} values but the header has {len(header)} columns; "
                           "every line needs one value per column")
        rows.append([cell.strip() for cell in row])
        numbers.append(number)
    if len(rows) < 2:
        raise CSVError(f"the file has {len(rows)} data row{'' if len(rows) == 1 else 's'}: a table needs at least 2")
    if len(rows) > MAX_ROWS:
        raise CSVError(f"the file has {len(rows):,} rows: more than the {MAX_ROWS:,} allowed")
    return header, rows, numbers


def _check_header(header: list[str]) -> None:
    if len(header) > MAX_COLUMNS:
        raise CSVError(f"the file has {len(header):,} columns: more than the {MAX_COLUMNS:,} allowed")
    for i, column in enumerate(header):
        if not column:
            raise CSVError(f"column {i + 1} of the header has no name; every column needs one")
    seen: set[str] = set()
    for column in header:
        if column in seen:
            raise CSVError(f"column name {column!r} appears more than once in the header; column names must be unique")
        seen.add(column)


def _listing(names: Sequence[str], limit: int = 12) -> str:
    shown = ", ".join(repr(n) for n in names[:limit])
    return shown + (f", ... ({len(names)} in all)" if len(names) > limit else "")


def _is_missing(cell: str) -> bool:
    return cell.lower() in MISSING_TOKENS


def _as_number(cell: str) -> float | None:
    """The cell's value if it is a number written plainly (finite or not), else None."""
    try:
        return float(cell)
    except ValueError:
        return None


def _column_type(column: str, cells: list[str], categorical: set[str], numeric: set[str]) -> str:
    if column in categorical:
        return "categorical"
    if column in numeric:
        return "numeric"
    present = [c for c in cells if not _is_missing(c)]
    if present and all(_as_number(c) is not None for c in present):
        return "numeric"
    return "categorical"


def _numbers(column: str, cells: list[str], lines: list[int]) -> np.ndarray:
    """float64 (N,), NaN for missing cells; CSVError for text, nan or inf (the data line is named)."""
    values = np.empty(len(cells))
    for i, cell in enumerate(cells):
        if _is_missing(cell):
            values[i] = math.nan
            continue
        value = _as_number(cell)
        if value is None:
            raise CSVError(f"column {column!r}, line {lines[i]}: {cell[:40]!r} is not a number (the column is numeric)")
        if not math.isfinite(value):
            raise CSVError(f"column {column!r}, line {lines[i]}: {cell!r} is not a finite number; leave the cell empty "
                           "(or NA) for a missing value")
        values[i] = value
    return values


def _categories(column: str, cells: list[str]) -> tuple[np.ndarray, tuple[str, ...], str | None]:
    """(codes int64 (N,), -1 = missing; the levels, sorted; a note about formula-like text, or None)."""
    present = sorted({c for c in cells if not _is_missing(c)})
    if len(present) > MAX_LEVELS:
        raise CSVError(f"column {column!r} has {len(present):,} distinct values: too many for a category (at most "
                       f"{MAX_LEVELS}); leave it out (drop) or, if it holds numbers, declare it numeric")
    index = {level: k for k, level in enumerate(present)}
    codes = np.array([-1 if _is_missing(c) else index[c] for c in cells], dtype=np.int64)
    formulas = [c for c in present if c.startswith(_FORMULA_START) and _as_number(c) is None]
    note = (f"column {column!r}: {len(formulas)} value(s) look like spreadsheet formulas (e.g. {formulas[0][:30]!r}); "
            "they are kept as plain text and never evaluated") if formulas else None
    return codes, tuple(present), note


def _target(cells: list[str], column: str, lines: list[int]) -> tuple[np.ndarray, tuple[str, ...]]:
    """Labels int64 (N,) and class names (numbers sorted by value, text alphabetically)."""
    for i, cell in enumerate(cells):
        if _is_missing(cell):
            raise CSVError(f"target column {column!r}, line {lines[i]}: the label is missing; every row needs one")
    classes = sorted(set(cells), key=lambda c: (0, float(c), c) if _as_number(c) is not None else (1, 0.0, c))
    if len(classes) < 2:
        raise CSVError(f"target column {column!r} has a single class ({classes[0]!r}); a target needs at least 2")
    if len(classes) > MAX_LEVELS:
        raise CSVError(f"target column {column!r} has {len(classes):,} distinct values: at most {MAX_LEVELS} classes "
                       "are allowed (is it a number to predict rather than a class?)")
    index = {c: k for k, c in enumerate(classes)}
    return np.array([index[c] for c in cells], dtype=np.int64), tuple(classes)
