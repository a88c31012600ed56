"""The table tasks' corruption: drawn from the columns' marginals in the batch, in batched tensor operations."""
from __future__ import annotations

import torch

from sslcore.data import load_dataset
from sslcore.tasks._table import bernoulli_cells, exact_cells, marginal_swap
from sslcore.tasks.build import build_task
from tests.conftest import tiny_config


def test_a_swapped_cell_takes_a_value_of_its_own_column_and_the_rest_stays() -> None:
    rows = torch.arange(64 * 6, dtype=torch.float32).reshape(64, 6)  # every value tells its row and column
    cells = bernoulli_cells((64, 6), 0.5, torch.Generator().manual_seed(0), rows.device)
    swapped = marginal_swap(rows, cells, torch.Generator().manual_seed(1))
    assert torch.equal(swapped[~cells], rows[~cells])
    assert torch.equal(swapped.long() % 6, rows.long() % 6)  # every value still belongs to its column
    donors = swapped.long() // 6  # the row each value came from
    assert len(torch.unique(donors[cells])) > 20  # cells draw their own donors, not one donor row per row


def test_scarf_corrupts_exactly_its_share_of_every_row_and_vime_about_its_rate() -> None:
    g = torch.Generator().manual_seed(0)
    exact = exact_cells((200, 13), 0.6, g, torch.device("cpu"))
    assert exact.sum(dim=1).tolist() == [8] * 200  # round(0.6 * 13)
    about = bernoulli_cells((400, 50), 0.3, g, torch.device("cpu"))
    assert 0.27 < about.float().mean() < 0.33


def test_the_same_seed_gives_the_same_corruption_and_another_seed_another() -> None:
    config = tiny_config("vime", **{"data.dataset": "wine"})
    data = load_dataset("wine")
    task = build_task(config, data)
    rows = data.test.to_input(data.test.rows[:16])
    a, _ = task.corrupt(rows, torch.Generator().manual_seed(3))
    b, _ = task.corrupt(rows, torch.Generator().manual_seed(3))
    c, _ = task.corrupt(rows, torch.Generator().manual_seed(4))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_the_plain_autoencoder_sees_the_row_and_the_denoising_one_a_corrupted_copy() -> None:
    data = load_dataset("wine")
    rows = data.test.to_input(data.test.rows[:16])
    plain = build_task(tiny_config("tabular_autoencoder", **{"data.dataset": "wine"}), data)
    assert torch.equal(plain.make_views(rows, torch.Generator())["input"], rows)
    for kind in ("marginal", "zero", "gaussian"):
        noisy = build_task(tiny_config("tabular_autoencoder", **{"data.dataset": "wine", "task.corruption": 0.5,
                                                                 "task.corruption_kind": kind}), data)
        inputs, cells = noisy.corrupt(rows, torch.Generator().manual_seed(0))
        assert torch.equal(inputs[~cells], rows[~cells]) and not torch.equal(inputs[cells], rows[cells])
    zero = build_task(tiny_config("tabular_autoencoder", **{"data.dataset": "wine", "task.corruption": 0.5,
                                                            "task.corruption_kind": "zero"}), data)
    inputs, cells = zero.corrupt(rows, torch.Generator().manual_seed(0))
    assert torch.allclose(zero.standardise(inputs)[cells], torch.zeros(int(cells.sum())), atol=1e-5)
