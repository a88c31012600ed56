"""Tables as a kind of data: the embedded tables, the synthetic generator, train-only statistics, pairing."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from sslcore.config import ConfigError, default_config
from sslcore.data import RawTable, TableDataset, dataset_info, load_dataset, load_run_data, to_model_input
from sslcore.data.synthetic import column_counts, make_synthetic_table
from sslcore.pairing import encoders_for, pairing_problem, tasks_for

TABLES = {"wine": (178, 13, 3), "breast_cancer": (569, 30, 2), "digits_table": (1797, 64, 10),
          "synthetic_table": (20_000, 32, 4)}


@pytest.mark.parametrize("name", sorted(TABLES))
def test_each_embedded_table_loads_as_finite_float_rows_with_named_columns(name: str) -> None:
    rows, columns, classes = TABLES[name]
    split = load_dataset(name)
    declared = dataset_info(name)["sample_shape"]  # None where it depends on the settings (synthetic_table)
    assert split.kind == "table" and split.sample_shape == (columns,) and declared in ((columns,), None)
    assert len(split.train) + len(split.test) == rows and len(split.class_names) == classes
    for side in (split.train, split.test):
        assert isinstance(side, TableDataset) and side.rows.dtype == torch.float32
        assert side.rows.shape[1] == columns and torch.isfinite(side.rows).all()
    assert len(set(split.train.columns.names)) == columns and set(split.train.columns.types) == {"numeric"}
    assert torch.equal(split.train.labels.unique(), torch.arange(classes))


def test_column_statistics_come_from_the_train_split_only() -> None:
    split = load_dataset("wine")
    columns = split.train.columns
    assert torch.allclose(columns.mean, split.train.rows.double().mean(0).float(), rtol=1e-5)
    assert not torch.allclose(columns.mean, split.test.rows.mean(0), rtol=1e-3)  # the test rows were not used
    standardised = split.train.standardised()
    assert torch.allclose(standardised.mean(0), torch.zeros(13), atol=1e-4)
    assert torch.allclose(standardised.std(0), torch.ones(13), atol=1e-4)


def test_missing_cells_are_imputed_with_the_train_median_and_flagged_only_where_train_had_them() -> None:
    values = np.array([[1.0, 5.0], [np.nan, 6.0], [3.0, 7.0], [9.0, np.nan]])
    table = RawTable("t", values, ("a", "b"), torch.tensor([0, 1, 0, 1]), ("x", "y"))
    split = table.split(torch.tensor([0, 1, 2]), torch.tensor([3]))
    assert split.train.columns.names == ("a", "b", "a (missing)")  # b misses only in the test row: no indicator
    assert split.train.rows[1].tolist() == [2.0, 6.0, 1.0]  # median of the train values 1 and 3
    assert split.test.rows[0].tolist() == [9.0, 6.0, 0.0]  # b filled with its train median


def test_rows_are_fed_to_the_model_as_they_are_and_images_scaled_to_one() -> None:
    rows = load_dataset("wine").test.rows[:4]
    fed = to_model_input(rows)
    assert torch.equal(fed, rows) and fed.data_ptr() != rows.data_ptr()  # a copy: the dataset cannot be changed
    images = load_dataset("digits").test.images[:4]
    assert to_model_input(images).max() <= 1.0 and to_model_input(images).dtype == torch.float32


def test_synthetic_table_is_a_pure_function_of_its_settings() -> None:
    a, ya = make_synthetic_table(500, 12, 0.3)
    b, yb = make_synthetic_table(500, 12, 0.3)
    assert np.array_equal(a, b) and np.array_equal(ya, yb)
    assert a.shape == (500, 12) and np.bincount(ya).tolist() == [125] * 4  # balanced classes
    assert column_counts(32) == (8, 8, 16)
    c, _ = make_synthetic_table(500, 12, 1.5)
    assert not np.allclose(a, c)  # noise changes the values


def test_synthetic_table_options_come_from_the_data_config() -> None:
    config = default_config(**{"data.dataset": "synthetic_table", "task.name": "scarf", "data.synthetic_rows": 1000,
                               "data.synthetic_columns": 8})
    split = load_run_data(config.data)
    assert len(split.train) + len(split.test) == 1000 and split.sample_shape == (8,)
    with pytest.raises(ConfigError, match=r"data.synthetic_rows = 50 is not allowed: expected an integer between 200"):
        config.replace({"data.synthetic_rows": 50})


def test_trees_beat_a_straight_line_on_the_synthetic_classes() -> None:
    """The class boundaries are not linear: with plenty of labels, trees do much better than logistic regression."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x, y = make_synthetic_table(4000, 32, 0.5)
    linear = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(x[:3000], y[:3000])
    trees = HistGradientBoostingClassifier(random_state=0).fit(x[:3000], y[:3000])
    assert trees.score(x[3000:], y[3000:]) > linear.score(x[3000:], y[3000:]) + 0.1


def test_pairing_keeps_table_tasks_and_image_tasks_apart_and_names_the_fix() -> None:
    assert set(tasks_for("wine")) >= {"tabular_autoencoder", "vime", "scarf"} and "simclr" not in tasks_for("wine")
    assert "scarf" not in tasks_for("mnist5k")
    assert encoders_for("scarf", "wine") == ["table_mlp"]
    problem = pairing_problem("simclr", "convnet", "wine")
    assert "needs image data, and 'wine' is table data; pick a dataset such as" in problem
    assert "encoder 'convnet' takes image data, not table data; pick encoder table_mlp" in pairing_problem(
        "scarf", "convnet", "wine")


def test_a_table_config_without_an_encoder_gets_the_table_mlp() -> None:
    config = default_config(**{"data.dataset": "synthetic_table", "task.name": "scarf"})
    assert config.encoder.name == "table_mlp"
    with pytest.raises(ConfigError, match="encoder 'convnet' takes image data"):
        default_config(**{"data.dataset": "wine", "task.name": "vime", "encoder.name": "convnet"})


def test_a_split_gives_its_parts_as_the_kind_they_are_and_refuses_the_other() -> None:
    train, test = load_dataset("wine").as_tables()
    assert isinstance(train, TableDataset) and isinstance(test, TableDataset) and train.columns.names
    images_train, _ = load_dataset("digits").as_images()
    assert images_train.images.dtype == torch.uint8
    with pytest.raises(TypeError, match="wine holds table data, not images"):
        load_dataset("wine").as_images()
    with pytest.raises(TypeError, match="digits holds image data, not a table"):
        load_dataset("digits").as_tables()
