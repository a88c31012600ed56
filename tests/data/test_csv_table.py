"""A person's CSV file as a table: types, missing values, the target, and every bad input refused in one line."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from sslcore.data.csv_table import CSVError, read_csv_table

GOOD = b"""age,colour,income,label
31,red,1200.5,yes
45,blue,,no
,red,800,yes
52,green,2000,no
"""


def parse(data: bytes, **kwargs):
    return read_csv_table(data, name="mine", **kwargs)


def test_columns_are_typed_missing_cells_kept_and_the_target_becomes_labels() -> None:
    parsed = parse(GOOD, target="label")
    table = parsed.table
    assert parsed.types == {"age": "numeric", "colour": "categorical", "income": "numeric"}
    assert table.numeric_names == ("age", "income") and np.isnan(table.numeric[2, 0]) and np.isnan(table.numeric[1, 1])
    assert table.levels == (("blue", "green", "red"),) and table.codes()[:, 0].tolist() == [2, 0, 2, 1]
    assert table.class_names == ("no", "yes") and table.labels.tolist() == [1, 0, 1, 0]


def test_split_imputes_with_the_train_median_and_adds_missing_indicators() -> None:
    split = parse(GOOD, target="label").table.split(torch.tensor([0, 1, 2]), torch.tensor([3]))
    train = split.train
    names = train.columns.names
    assert names == ("age", "income", "age (missing)", "income (missing)", "colour=blue", "colour=green", "colour=red")
    age = names.index("age")
    assert train.rows[2, age] == pytest.approx(38.0)  # median of 31 and 45: the train rows only
    assert train.rows[:, names.index("age (missing)")].tolist() == [0, 0, 1]
    assert torch.isfinite(train.rows).all() and train.columns.types[-1] == "categorical"


def test_without_a_target_the_table_is_unlabelled() -> None:
    parsed = parse(GOOD)
    assert not parsed.labelled and parsed.table.class_names == () and parsed.types["label"] == "categorical"
    assert parsed.table.labels.tolist() == [-1] * 4 and parsed.lines == [2, 3, 4, 5]


def test_types_can_be_overridden_and_columns_dropped() -> None:
    parsed = parse(GOOD, target="label", categorical=["age"], drop=["colour"])
    assert parsed.types == {"age": "categorical", "income": "numeric"}


def test_a_formula_is_kept_as_text_and_never_evaluated() -> None:
    data = b"x,cmd\n1,=cmd|' /C calc'!A0\n2,ok\n3,=1+1\n"
    parsed = parse(data)
    assert parsed.types["cmd"] == "categorical"
    assert "=cmd|' /C calc'!A0" in parsed.table.levels[0] and "=1+1" in parsed.table.levels[0]
    assert any("formulas" in note and "never evaluated" in note for note in parsed.notes)


@pytest.mark.parametrize("data, kwargs, message", [
    (b"a,b,label\n1,2,x\n", {"target": "label"}, "1 data row: a table needs at least 2"),
    (b"name,city,label\nann,paris,x\nbob,rome,y\n", {"target": "label"}, "no numeric column"),
    (b"a,label\n1,x\n2,x\n3,x\n", {"target": "label"}, "target column 'label' has a single class ('x')"),
    (b"a,label\n1,x\n2,y\n", {"target": "class"},
     "target column 'class' is not in the file; its columns are: 'a', 'label'"),
    (b"a,b\n1,2\n3,4,5\n6,7\n", {}, "line 3 has 3 values but the header has 2 columns"),
    (b"a,b\n1,caf\xe9\n2,x\n", {}, "not UTF-8 text: byte 0xe9 on line 2"),
    (b"a,b\n1,2\ninf,3\n4,5\n", {}, "column 'a', line 3: 'inf' is not a finite number"),
    (b"a,b\n1,2\nnan,3\n4,5\n", {}, "column 'a', line 3: 'nan' is not a finite number"),
    (b"a,b,a\n1,2,3\n4,5,6\n", {}, "column name 'a' appears more than once"),
    (b"a,b\n1,2\n3,x\n", {"numeric": ["b"]}, "column 'b', line 3: 'x' is not a number"),
])
def test_bad_input_is_refused_with_one_clear_line(data: bytes, kwargs: dict, message: str) -> None:
    with pytest.raises(CSVError) as error:
        parse(data, **kwargs)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_a_file_over_the_size_cap_is_refused_before_it_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    big = tmp_path / "big.csv"
    with open(big, "wb") as f:  # sparse: a 1 GiB file without writing 1 GiB
        f.truncate(2**30)
    monkeypatch.setattr(Path, "read_bytes", lambda self: pytest.fail("the file was read"))
    with pytest.raises(CSVError, match="1,024.0 MiB: larger than the 100 MiB allowed"):
        read_csv_table(big, name="big")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.csv"]  # nothing written next to it


def test_a_category_with_too_many_levels_names_the_way_out() -> None:
    data = b"id,x\n" + b"".join(f"u{i},{i}\n".encode() for i in range(60))
    with pytest.raises(CSVError, match="column 'id' has 60 distinct values.*leave it out"):
        parse(data)
    assert parse(data, drop=["id"]).types == {"x": "numeric"}
