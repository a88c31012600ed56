"""``python -m sslcore`` as one torchrun rank, watched: every file this process opens for writing, creates,
renames or removes is recorded (Python audit hooks), and at the end of training a checksum of the model's
parameters. Both go to ``<report dir>/rank<R>.json``, written after recording stops.

With ``FAIL_RANK=R`` in the environment, rank R raises an error at step 3 (a crash of that rank alone).

Usage: torchrun ... tests/distributed/rank_harness.py REPORT_DIR train --dataset digits ...
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
WRITE_EVENTS = {"os.rename", "os.replace", "os.remove", "os.unlink", "os.mkdir", "os.rmdir", "os.truncate",
                "shutil.rmtree", "shutil.move", "os.link", "os.symlink"}
writes: list[str] = []
recording = True


def audit(event: str, args: tuple[Any, ...]) -> None:
    if not recording:
        return
    if event == "open":
        path, mode, flags = args
        if isinstance(path, (str, bytes, os.PathLike)) and (
                (mode is not None and any(c in mode for c in "wax+")) or (mode is None and flags & WRITE_FLAGS)):
            writes.append(f"open {os.fsdecode(path)}")
    elif event in WRITE_EVENTS:  # rename/replace: (src, dst, ...); the others name their path first
        writes.append(f"{event} " + " ".join(str(a) for a in args[:2] if isinstance(a, (str, bytes, os.PathLike))))


def main() -> int:
    global recording
    report_dir, argv = Path(sys.argv[1]), sys.argv[2:]
    sys.addaudithook(audit)

    from sslcore import cli
    from sslcore.engine import training_run
    from sslcore.engine.callbacks import Callback

    checksums: dict[str, float] = {}

    class Checksum(Callback):
        def on_fit_start(self, state: Any, trainer: Any) -> None:
            self.task = trainer.task

        def on_fit_end(self, state: Any, outcome: str) -> None:
            checksums["parameters"] = float(sum(p.detach().double().sum() for p in self.task.parameters()))
            checksums["abs"] = float(sum(p.detach().double().abs().sum() for p in self.task.parameters()))

    class FailAtStep3(Callback):
        def on_step_end(self, state: Any) -> None:
            if state.step == 3:
                raise RuntimeError(f"boom on rank {os.environ['RANK']}")

    extra = [Checksum()] + ([FailAtStep3()] if os.environ.get("FAIL_RANK") == os.environ["RANK"] else [])
    standard = training_run.run_callbacks
    training_run.run_callbacks = lambda *a, **k: [*standard(*a, **k), *extra]
    code = cli.main(argv)
    recording = False
    rank = os.environ["RANK"]
    (report_dir / f"rank{rank}.json").write_text(json.dumps({"writes": writes, "checksums": checksums, "code": code}))
    return code


if __name__ == "__main__":
    sys.exit(main())
