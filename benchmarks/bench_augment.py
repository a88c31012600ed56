"""Throughput of sslcore's batched view augmentation against a per-image torchvision loop.

The baseline is what users escape from: a torchvision.transforms.v2 pipeline applied one image at a
time (RandomResizedCrop + ColorJitter, plus the flip and grayscale of the colour recipe), on the same
in-memory tensors. Both run on the CPU with the same recipe parameters.

    python benchmarks/bench_augment.py            # 256-image batches, a few seconds
    python benchmarks/bench_augment.py --smoke    # tiny, for CI
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torchvision.transforms import v2

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout, uninstalled
from sslcore.augment import ViewAugment, default_view_augment  # noqa: E402


def torchvision_pipeline(recipe: ViewAugment, channels: int, size: int) -> v2.Compose:
    """The same recipe as ``recipe``, as a per-image torchvision v2 pipeline."""
    s = recipe.jitter_strength
    jitter = v2.ColorJitter(brightness=0.8 * s, contrast=0.8 * s, saturation=0.8 * s if channels == 3 else 0,
                            hue=0.2 * s if channels == 3 else 0)
    steps: list[torch.nn.Module] = [
        v2.RandomResizedCrop(size, scale=(recipe.crop_scale_min, recipe.crop_scale_max), antialias=True),
    ]
    if recipe.rotation_deg:
        steps.append(v2.RandomRotation(recipe.rotation_deg))
    if recipe.flip:
        steps.append(v2.RandomHorizontalFlip())
    steps.append(v2.RandomApply([jitter], p=recipe.jitter_p))
    if channels == 3 and recipe.grayscale_p:
        steps.append(v2.RandomGrayscale(p=recipe.grayscale_p))
    return v2.Compose(steps)


def images_per_second(fn: Callable[[], torch.Tensor], batch: int, repeats: int) -> tuple[float, float]:
    """(best, median) images/s over ``repeats`` timed batches; the best is the figure least disturbed
    by other processes on a shared machine."""
    fn()  # warm-up: first-call allocations and dispatch caches
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return batch / min(times), batch / statistics.median(times)


def bench(channels: int, size: int, batch: int, repeats: int) -> None:
    x = torch.rand((batch, channels, size, size), generator=torch.Generator().manual_seed(0))
    recipe = default_view_augment(channels, size)
    gen = torch.Generator().manual_seed(1)
    pipeline = torchvision_pipeline(recipe, channels, size)
    ours, ours_med = images_per_second(lambda: recipe(x, gen), batch, repeats)
    loop, loop_med = images_per_second(lambda: torch.stack([pipeline(img) for img in x]), batch,
                                       max(3, repeats // 5))
    print(f"{channels}x{size}x{size}, batch {batch}: batched {ours:9,.0f} img/s (median {ours_med:9,.0f}) | "
          f"per-image torchvision v2 loop {loop:7,.0f} img/s (median {loop_med:7,.0f}) | "
          f"speed-up x{ours / loop:.1f} (median x{ours_med / loop_med:.1f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny batches, few repeats (CI)")
    args = parser.parse_args()
    batch, repeats = (16, 3) if args.smoke else (256, 30)
    print(f"torch {torch.__version__}, CPU threads {torch.get_num_threads()}")
    bench(1, 28, batch, repeats)
    bench(3, 32, batch, repeats)


if __name__ == "__main__":
    main()
