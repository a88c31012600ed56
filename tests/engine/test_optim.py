"""The engine's AdamW and SGD: step for step what torch.optim does, and checkpoints that load both ways."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from sslcore.engine.optim import SGD, AdamW

ROOT = Path(__file__).resolve().parents[2]


def model(seed: int = 0) -> nn.Module:
    """A conv net in channels-last (as the trainer keeps conv nets) with a head: 4-D, 2-D and 1-D parameters."""
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 3))
    return net.to(memory_format=torch.channels_last)


def groups(net: nn.Module, weight_decay: float) -> list[dict]:
    """Decay on weights, none on biases and norms: the trainer's two groups."""
    return [{"params": [p for p in net.parameters() if p.ndim > 1], "weight_decay": weight_decay},
            {"params": [p for p in net.parameters() if p.ndim <= 1], "weight_decay": 0.0}]


def train(net: nn.Module, optimizer, steps: int, start: int = 0) -> None:
    for step in range(start, start + steps):
        g = torch.Generator().manual_seed(step)
        x, y = torch.rand(8, 1, 8, 8, generator=g), torch.randint(0, 3, (8,), generator=g)
        for group in optimizer.param_groups:
            group["lr"] = 1e-2 * (1 + step % 3)  # a schedule changes lr between steps, as the trainer's does
        optimizer.zero_grad(set_to_none=True)
        nn.functional.cross_entropy(net(x), y).backward()
        optimizer.step()


def same_weights(a: nn.Module, b: nn.Module) -> None:
    for (name, x), y in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        torch.testing.assert_close(x, y, rtol=1e-6, atol=1e-7, msg=name)


OURS_AND_TORCH = [
    (lambda p: AdamW(p, lr=1e-2), lambda p: torch.optim.AdamW(p, lr=1e-2)),
    (lambda p: SGD(p, lr=1e-2, momentum=0.9, nesterov=True),
     lambda p: torch.optim.SGD(p, lr=1e-2, momentum=0.9, nesterov=True)),
]


@pytest.mark.parametrize("ours, theirs", OURS_AND_TORCH, ids=["adamw", "sgd"])
def test_steps_match_torch_optim(ours, theirs) -> None:
    a, b = model(), model()
    train(a, ours(groups(a, 5e-2)), 12)
    train(b, theirs(groups(b, 5e-2)), 12)
    same_weights(a, b)


@pytest.mark.parametrize("ours, theirs", OURS_AND_TORCH, ids=["adamw", "sgd"])
def test_state_dicts_load_both_ways_and_training_goes_on_the_same(ours, theirs) -> None:
    reference = model()
    reference_opt = theirs(groups(reference, 5e-2))
    train(reference, reference_opt, 10)  # torch all the way: the path to match

    mine = model()
    mine_opt = ours(groups(mine, 5e-2))
    train(mine, mine_opt, 5)
    saved = mine_opt.state_dict()
    assert set(saved["param_groups"][0]) == set(theirs(groups(model(), 0.0)).state_dict()["param_groups"][0])
    # our checkpoint -> torch's optimiser, then torch's checkpoint -> ours again
    torch_net = model()
    torch_net.load_state_dict(mine.state_dict())
    torch_opt = theirs(groups(torch_net, 5e-2))
    torch_opt.load_state_dict(saved)
    train(torch_net, torch_opt, 2, start=5)
    back = model()
    back.load_state_dict(torch_net.state_dict())
    back_opt = ours(groups(back, 5e-2))
    back_opt.load_state_dict(torch_opt.state_dict())
    train(back, back_opt, 3, start=7)
    same_weights(back, reference)


def test_a_state_of_another_model_is_refused_clearly() -> None:
    net = model()
    optimizer = AdamW(groups(net, 0.0))
    other = AdamW(nn.Linear(2, 2).parameters())
    with pytest.raises(ValueError, match="another model"):
        optimizer.load_state_dict(other.state_dict())


@pytest.mark.parametrize("bad", [{"lr": -1.0}, {"betas": (0.9, 1.0)}, {"weight_decay": -0.1}])
def test_bad_hyperparameters_are_refused(bad) -> None:
    with pytest.raises(ValueError, match="AdamW needs"):
        AdamW(nn.Linear(2, 2).parameters(), **bad)


def test_training_never_imports_torch_dynamo(tmp_path: Path) -> None:
    """The point of these classes: a whole default-recipe epoch without the 1 s import of torch._dynamo."""
    code = ("import sys; from sslcore.cli import main; "
            f"main(['train', '--dataset', 'digits', '--epochs', '1', '--set', 'encoder.width=8', "
            f"'--set', 'train.threads=1', '--runs-dir', {str(tmp_path)!r}]); "
            "print('torch._dynamo' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                            env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "False"
