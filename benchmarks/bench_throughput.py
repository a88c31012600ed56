"""Are the training steps at the hardware limit? Peak, FLOPs per step, achieved FLOP/s, and a DataLoader baseline.

In one process (issue 14, target 1):

1. the machine's matmul peak: fp32 and bf16 square matmuls, GFLOP/s;
2. the FLOPs of one training step (forward + backward, counted by ``torch.utils.flop_counter.FlopCounterMode``:
   convolutions and matmuls; the batched augmentations are not counted), for the default recipe (mnist5k +
   SimCLR + convnet) and for ``resnet18`` on 32x32 colour images (``shapes``);
3. the achieved GFLOP/s of the trainer's own step (``Trainer.train_step``, augmentations included in the time)
   in fp32 and its % of the fp32 peak (target >= 70% on CPU); where the CPU has native bf16 (the default then
   trains in bf16), also the bf16 step's images/s, its ratio to the fp32 step's and its % of the bf16 peak;
4. images/s of the same model and loss fed by a standard ``torch.utils.data.DataLoader`` with per-image
   torchvision v2 transforms of the same kind (crop, rotation, brightness/contrast, flips for colour), and the
   ratio of the trainer's images/s to it, both in the default precision (target >= 2x).

    .venv/bin/python benchmarks/bench_throughput.py            # the README figures (a few minutes on 2 cores)
    .venv/bin/python benchmarks/bench_throughput.py --smoke    # seconds: tiny sizes, for the test suite
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from emulation import add_emulation_flag, reexec_if_emulating  # noqa: E402

from sslcore.config import default_config  # noqa: E402
from sslcore.data import load_run_data  # noqa: E402
from sslcore.engine.device import autocast, configure_threads, describe_machine, pick_device, use_bf16  # noqa: E402
from sslcore.engine.trainer import Trainer  # noqa: E402
from sslcore.losses import nt_xent_loss  # noqa: E402
from sslcore.tasks.build import build_task  # noqa: E402

RECIPES = {"default (mnist5k, SimCLR, convnet)": {},
           "resnet18 (shapes 32x32 colour, SimCLR)": {"data.dataset": "shapes", "encoder.name": "resnet18"}}


def matmul_gflops(dtype: torch.dtype, n: int, seconds: float) -> float:
    """Best GFLOP/s of n x n matmuls in ``dtype`` over about ``seconds`` (2 n^3 FLOPs each)."""
    a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
    a @ b  # first call: kernel selection
    best, deadline = 0.0, time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        started = time.perf_counter()
        a @ b
        best = max(best, 2 * n**3 / (time.perf_counter() - started) / 1e9)
    return best


def trainer_for(overrides: dict, batch: int) -> Trainer:
    config = default_config(**{**overrides, "train.batch_size": batch})
    data = load_run_data(config.data)
    torch.manual_seed(0)
    return Trainer.create(config, build_task(config, data), data, pick_device(config.train.device))


def step_flops(trainer: Trainer, images: torch.Tensor) -> int:
    """Convolution and matmul FLOPs of one forward + backward on ``images`` (uint8 (B, C, H, W))."""
    from torch.utils.flop_counter import FlopCounterMode

    generator = torch.Generator(device=trainer.device).manual_seed(0)
    counter = FlopCounterMode(display=False)
    with counter:
        out = trainer.task(trainer.to_input(images), generator)
        out.loss.backward()
    trainer.optimizer.zero_grad(set_to_none=True)
    return counter.get_total_flops()


def trainer_images_per_s(trainer: Trainer, steps: int) -> float:
    """Images/s of the trainer's own steps (augmentation on the batch included), after one warm-up step."""
    generator = torch.Generator(device=trainer.device)
    bf16 = use_bf16(trainer.device, trainer.config.train.precision, trainer.task)
    batch = trainer.config.train.batch_size
    images = trainer.train_images[:batch]
    trainer.train_step(trainer.to_input(images), generator, bf16)
    started = time.perf_counter()
    for _ in range(steps):
        trainer.train_step(trainer.to_input(images), generator, bf16)
    return steps * batch / (time.perf_counter() - started)


class ViewPairs(torch.utils.data.Dataset):
    """Two per-image torchvision v2 views of each uint8 image (C, H, W): the pipeline users are escaping from."""

    def __init__(self, images: torch.Tensor, colour: bool) -> None:
        from torchvision.transforms import v2

        size = images.shape[-2:]
        jitter = v2.ColorJitter(brightness=0.4, contrast=0.4, saturation=0.4 if colour else 0, hue=0.1 if colour else 0)
        steps = [v2.RandomResizedCrop(size, scale=(0.3, 1.0), antialias=True), v2.RandomRotation(10.0), jitter]
        steps += [v2.RandomHorizontalFlip()] if colour else []
        self.images, self.transform = images, v2.Compose([*steps, v2.ToDtype(torch.float32, scale=True)])

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.transform(self.images[i]), self.transform(self.images[i])


def dataloader_images_per_s(trainer: Trainer, steps: int, workers: int, bf16: bool) -> float:
    """Images/s of the same model and loss (NT-Xent on the projection head) fed by a DataLoader, in the same
    precision as the trainer's step it is compared with (bf16 autocast when ``bf16``)."""
    batch = trainer.config.train.batch_size
    images = trainer.train_images[: batch * (steps + 1)].cpu()
    loader = torch.utils.data.DataLoader(ViewPairs(images, images.shape[1] == 3), batch_size=batch, shuffle=True,
                                         drop_last=True, num_workers=workers)
    task, counted, started = trainer.task, 0, time.perf_counter()
    for i, (v1, v2) in enumerate(loader):
        if i == 1:  # the first batch warms up (and starts the workers)
            started = time.perf_counter()
        x = torch.cat([v1, v2]).to(trainer.device)
        with autocast(trainer.device, bf16):
            z = task.projection(task.encoder(x))
        assert z is not None  # SimCLR has a projection head
        loss, _ = nt_xent_loss(z[:batch].float(), z[batch:].float(), temperature=0.2)
        trainer.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        trainer.optimizer.step()
        counted += batch if i >= 1 else 0
    return counted / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: seconds, for the test suite")
    parser.add_argument("--workers", type=int, default=1, help="DataLoader worker processes (default 1)")
    add_emulation_flag(parser)
    args = parser.parse_args()
    reexec_if_emulating(args)
    configure_threads(0)
    n, seconds, steps, batch = (256, 0.3, 2, 32) if args.smoke else (1024, 3.0, 20, 128)
    print(describe_machine())
    peak = matmul_gflops(torch.float32, n, seconds)
    bf16_peak = matmul_gflops(torch.bfloat16, n, seconds)
    print(f"matmul peak ({n}x{n}): fp32 {peak:.1f} GFLOP/s, bf16 {bf16_peak:.1f} GFLOP/s "
          f"({torch.get_num_threads()} threads)")
    recipes = {"default (digits, SimCLR, convnet)": {"data.dataset": "digits"}} if args.smoke else RECIPES
    for name, overrides in recipes.items():
        trainer = trainer_for({**overrides, "train.precision": "fp32"}, batch)
        flops = step_flops(trainer, trainer.train_images[:batch])
        fp32 = trainer_images_per_s(trainer, steps)
        gflops = flops / batch * fp32 / 1e9
        line = (f"{name}: {flops / batch / 1e6:.1f} MFLOP per image per step; fp32 step {fp32:,.0f} img/s = "
                f"{gflops:.1f} GFLOP/s = {gflops / peak:.0%} of the fp32 peak")
        ours, bf16 = fp32, use_bf16(trainer.device, "auto", trainer.task)
        if bf16:  # native bf16: the default precision (auto) trains in bf16
            ours = trainer_images_per_s(trainer_for(overrides, batch), steps)
            line += (f"; bf16 step (the default here) {ours:,.0f} img/s = {ours / fp32:.2f}x the fp32 step, "
                     f"{flops / batch * ours / 1e9 / bf16_peak:.0%} of the bf16 peak")
        baseline = dataloader_images_per_s(trainer, steps, args.workers, bf16)
        print(f"{line}; DataLoader + torchvision v2 ({args.workers} worker{'s' if args.workers != 1 else ''}, "
              f"{'bf16' if bf16 else 'fp32'}) {baseline:,.0f} img/s; ratio {ours / baseline:.2f}x (default precision)")
    print(describe_machine())


if __name__ == "__main__":
    main()
