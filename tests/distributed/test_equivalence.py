"""Two processes (gloo) compute what one process computes on the same global batch and weights.

One spawn of 2 ranks runs every check (starting processes is the slow part); each test asserts one part:
batch-level losses gathered across ranks, SimCLR through DistributedDataParallel with synchronised
BatchNorm (loss, parameter gradients, running statistics), and one real training step of every task.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch

from sslcore import distributed
from sslcore.data import load_run_data
from sslcore.engine import ddp
from sslcore.engine.trainer import Trainer
from sslcore.losses import barlow_twins_loss, dino_center, dino_loss, info_nce_loss, nt_xent_loss, vicreg_loss
from sslcore.models import build_encoder
from sslcore.tasks import TASKS
from sslcore.tasks.build import build_task
from sslcore.tasks.simclr import SimCLR, SimCLRConfig
from tests.conftest import tiny_config
from tests.distributed.spawn_support import run_ranks

WORLD = 2
N, D = 16, 6  # global batch and embedding size of the loss checks


def dino_with_fresh_centre(z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
    """DINO's loss (z1, z2 as two views' logits, each the other's teacher) against a centre just updated from
    this batch: its cross-entropy is per-sample, so only the centre's batch mean must span the ranks."""
    student, teacher = torch.stack([z1, z2]), torch.stack([z2, z1])  # (2, B, D)
    center = dino_center(torch.full((D,), 0.3), teacher, momentum=0.5)
    return dino_loss(student, teacher, center, student_temperature=0.1, teacher_temperature=0.04)


def batch_level_losses() -> dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]]:
    """Every loss in sslcore.losses that looks at the rest of the batch, as f(z1 (B, D), z2 (B, D)) -> scalar.

    BYOL's and SimSiam's negative cosine is not here: it is a mean of per-sample terms with no batch
    statistic, so the mean of the ranks' losses is the global batch's without gathering anything.
    """
    return {"nt_xent": lambda z1, z2: nt_xent_loss(z1, z2, temperature=0.5)[0],
            "info_nce": lambda z1, z2: info_nce_loss(z1, z2, temperature=0.2)[0],  # MoCo v3: keys of every rank
            "barlow_twins": lambda z1, z2: barlow_twins_loss(z1, z2, lambda_offdiag=0.05),
            "vicreg": lambda z1, z2: vicreg_loss(z1, z2, 25.0, 25.0, 1.0)[0],
            "dino_center": dino_with_fresh_centre}


def global_embeddings() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(7)
    return torch.randn(N, D, generator=g), torch.randn(N, D, generator=g)


def losses_and_gradients(z1: torch.Tensor, z2: torch.Tensor) -> dict[str, dict[str, torch.Tensor]]:
    """Each loss on (z1, z2) (this rank's rows) with the gradients of z1 and z2."""
    out = {}
    for name, loss_fn in batch_level_losses().items():
        a, b = z1.clone().requires_grad_(), z2.clone().requires_grad_()
        with distributed.spanning_ranks():
            loss = loss_fn(a, b)
        loss.backward()
        out[name] = {"loss": loss.detach(), "grad1": a.grad, "grad2": b.grad}
    return out


def simclr_with_fixed_views() -> SimCLR:
    """A small SimCLR whose two views are fixed functions of the image, so both set-ups see the same inputs."""
    torch.manual_seed(0)
    encoder = build_encoder("convnet", (1, 8, 8), width=8, mean=torch.full((1,), 0.5), std=torch.full((1,), 0.25))
    task = SimCLR(encoder, SimCLRConfig(), (1, 8, 8))
    task.two_views = lambda x, generator: (x, x.flip(-1))
    return task


def simclr_images() -> torch.Tensor:
    return torch.rand(N, 1, 8, 8, generator=torch.Generator().manual_seed(3))


def simclr_step(model: torch.nn.Module, task: SimCLR, images: torch.Tensor) -> dict[str, Any]:
    """One forward/backward; the loss, every parameter's gradient and every buffer (BatchNorm statistics)."""
    with distributed.spanning_ranks():
        out = model(images, torch.Generator())
    out.loss.backward()
    return {"loss": out.loss.detach(), "grads": {n: p.grad for n, p in task.named_parameters()},
            "buffers": {n: b.clone() for n, b in task.named_buffers()}}


def parameter_checksum(module: torch.nn.Module) -> float:
    return float(sum(p.detach().double().sum() for p in module.parameters()))


def one_step_of_every_task() -> dict[str, dict[str, float]]:
    """One real Trainer step of each registered task, on this rank's slice of a batch of the small data and
    encoder it fits (digits and the convnet where it can: tests/conftest.py ``fitting_data``)."""
    out = {}
    for name in TASKS.names():
        config = tiny_config(name, **{"train.batch_size": 32})
        data = load_run_data(config.data)
        torch.manual_seed(0)
        trainer = Trainer.create(config, build_task(config, data), data, torch.device("cpu"))
        index = distributed.local_share(trainer.epoch_order(0)[:32])
        trainer.train_step(trainer.to_input(trainer.train_images[index]), torch.Generator(), bf16=False)
        out[name] = {"loss": trainer.state.loss, "checksum": parameter_checksum(trainer.task)}
    return out


def on_each_rank() -> dict[str, Any]:
    rank, b = distributed.rank(), N // distributed.world_size()
    mine = slice(rank * b, (rank + 1) * b)
    z1, z2 = global_embeddings()
    task = simclr_with_fixed_views()
    model = ddp.wrap(task, torch.device("cpu"), sync_bn=True)
    return {"losses": losses_and_gradients(z1[mine], z2[mine]),
            "simclr": simclr_step(model, task, simclr_images()[mine]),
            "tasks": one_step_of_every_task()}


@pytest.fixture(scope="module")
def ranks(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    return run_ranks(on_each_rank, tmp_path_factory.mktemp("ranks"), world_size=WORLD)


def test_gathered_batch_losses_equal_the_single_process_loss_and_gradients(ranks: list[dict[str, Any]]) -> None:
    z1, z2 = global_embeddings()
    single = losses_and_gradients(z1, z2)
    for name, expected in single.items():
        per_rank = [r["losses"][name] for r in ranks]
        # each rank scores its own rows against the whole batch: their mean is the single-process loss
        mean_loss = torch.stack([r["loss"] for r in per_rank]).mean()
        assert abs(float(mean_loss) - float(expected["loss"])) < 1e-5, name
        for key in ("grad1", "grad2"):
            # DistributedDataParallel divides the summed gradients by the world size
            gathered = torch.cat([r[key] for r in per_rank]) / WORLD
            torch.testing.assert_close(gathered, expected[key], rtol=1e-4, atol=1e-6, msg=f"{name} {key}")


@pytest.mark.parametrize("name", list(batch_level_losses()))
def test_a_loss_that_did_not_gather_would_differ(ranks: list[dict[str, Any]], name: str) -> None:
    # The check above can fail: each rank's slice alone gives another loss than the global batch.
    z1, z2 = global_embeddings()
    local = batch_level_losses()[name](z1[: N // WORLD], z2[: N // WORLD])
    assert abs(float(local) - float(ranks[0]["losses"][name]["loss"])) > 1e-3, name


def test_simclr_through_ddp_with_synced_batchnorm_matches_one_process(ranks: list[dict[str, Any]]) -> None:
    task = simclr_with_fixed_views()
    single = simclr_step(task, task, simclr_images())
    mean_loss = torch.stack([r["simclr"]["loss"] for r in ranks]).mean()
    assert abs(float(mean_loss) - float(single["loss"])) < 1e-5
    # One scale for all: a bias right before BatchNorm has a gradient of zero up to rounding, in both set-ups.
    scale = max(float(g.abs().max()) for g in single["grads"].values())
    for r in ranks:
        for name, grad in single["grads"].items():
            torch.testing.assert_close(r["simclr"]["grads"][name], grad, rtol=1e-3, atol=1e-5 * scale, msg=name)
        for name, buffer in single["buffers"].items():  # BatchNorm running mean/var of the global batch
            torch.testing.assert_close(r["simclr"]["buffers"][name], buffer, rtol=1e-4, atol=1e-6, msg=name)


def test_every_task_takes_a_ddp_step_and_ranks_stay_identical(ranks: list[dict[str, Any]]) -> None:
    tasks = ranks[0]["tasks"]
    assert set(tasks) == set(TASKS.names())
    for name, result in tasks.items():
        assert torch.isfinite(torch.tensor(result["loss"])), name
        assert ranks[1]["tasks"][name] == result, name  # the same mean loss and bit-identical parameters
