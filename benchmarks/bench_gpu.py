"""GPU throughput: every pretext task trained one epoch on CUDA, then the same run on 2 processes (DDP).

For each registered task (that pairs with the dataset and encoder): one epoch with bf16 autocast where the
GPU supports it, the step loss read back every 50 steps; every training step is checked to run on the GPU
(parameters, batches and losses on cuda, never a silent fall-back to the CPU). Prints images/s and peak GPU
memory per task, and, with 2 or more GPUs, images/s of `torchrun --nproc-per-node 2` on SimCLR.

    .venv/bin/python benchmarks/bench_gpu.py            # mnist5k, default convnet
    .venv/bin/python benchmarks/bench_gpu.py --smoke    # digits, tiny; without CUDA: says so and exits 0
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from sslcore.config import ConfigError, default_config  # noqa: E402
from sslcore.data import load_dataset  # noqa: E402
from sslcore.engine.device import describe_machine, use_bf16  # noqa: E402
from sslcore.engine.trainer import Trainer  # noqa: E402
from sslcore.runs import RunStore  # noqa: E402
from sslcore.tasks import TASKS  # noqa: E402
from sslcore.tasks.build import build_task  # noqa: E402


class FellBackToCPU(AssertionError):
    """A training step ran (partly) on the CPU."""


def require_on(device: torch.device, what: str, *tensors: torch.Tensor) -> None:
    for t in tensors:
        if t.device.type != device.type:
            raise FellBackToCPU(f"{what} on {t.device}, not on {device.type}")


def one_epoch(overrides: dict[str, object], device: torch.device) -> tuple[float, float, int]:
    """(images/s, peak GPU memory in MiB, steps checked) of one training epoch on ``device`` (cuda)."""
    config = default_config(**overrides)
    data = load_dataset(config.data.dataset)
    torch.manual_seed(0)
    trainer = Trainer.create(config, build_task(config, data), data, device)
    require_on(device, "the training images", trainer.train_images)
    checked = []

    def check_step(module: torch.nn.Module, args: tuple, out: object) -> None:
        require_on(device, "a batch", args[0])
        require_on(device, "a loss", out.loss)  # type: ignore[attr-defined]
        checked.append(1)

    trainer.model.register_forward_hook(check_step)
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    trainer.fit()
    torch.cuda.synchronize()
    seconds = time.perf_counter() - started
    for name, p in trainer.task.named_parameters():
        require_on(device, f"parameter {name}", p)
    images = trainer.state.steps_per_epoch * trainer.state.batch_size
    return images / seconds, torch.cuda.max_memory_allocated() / 2**20, len(checked)


def ddp_images_per_second(overrides: dict[str, str]) -> float:
    """images/s of the epoch record of a SimCLR run trained by `torchrun --nproc-per-node 2` on 2 GPUs."""
    with tempfile.TemporaryDirectory() as tmp:
        sets = [a for k, v in overrides.items() for a in ("--set", f"{k}={v}")]
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", "-m", "sslcore",
               "train", "--task", "simclr", "--device", "cuda", "--runs-dir", tmp, *sets]
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        result = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=1800)
        if result.returncode != 0:
            raise SystemExit(f"the 2-process run failed:\n{result.stderr[-3000:]}")
        [run] = RunStore(tmp).list()
        return float(run.metrics("epoch")[-1]["images_per_s"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="a tiny digits version (CI runs it, also without CUDA)")
    args = parser.parse_args()
    print(describe_machine())
    if not torch.cuda.is_available():
        print(f"CUDA is not available here (torch {torch.__version__}): nothing to measure on a GPU.")
        return
    gpu = torch.cuda.get_device_name(0)
    bf16 = use_bf16(torch.device("cuda"), "auto")
    print(f"GPU: {gpu} x {torch.cuda.device_count()}, torch {torch.__version__}, CUDA {torch.version.cuda}, "
          f"bf16 autocast {'on' if bf16 else 'off (not supported)'}")
    base: dict[str, object] = {"train.epochs": 1, "train.device": "cuda", "train.log_every": 50, "train.knn_k": 0}
    base.update({"data.dataset": "digits", "encoder.width": 8} if args.smoke else {"data.dataset": "mnist5k"})
    print(f"one epoch of {base['data.dataset']}, batch {default_config().train.batch_size}, per task:")
    for name in TASKS.names():
        try:
            images_per_s, peak_mib, steps = one_epoch({**base, "task.name": name}, torch.device("cuda"))
        except ConfigError as e:  # a task that does not pair with this dataset or encoder
            print(f"  {name:<24} skipped: {e}")
            continue
        print(f"  {name:<24} {images_per_s:>10,.0f} img/s   peak GPU memory {peak_mib:>8,.1f} MiB   "
              f"({steps} steps, all on the GPU)")
    if torch.cuda.device_count() >= 2:
        ddp = ddp_images_per_second({k: str(v) for k, v in base.items() if k != "train.device"})
        print(f"  simclr on 2 GPUs (DDP)   {ddp:>10,.0f} img/s   (torchrun --nproc-per-node 2, global batch as above)")
    else:
        print("  (one GPU: the 2-process DDP case needs two)")


if __name__ == "__main__":
    main()
