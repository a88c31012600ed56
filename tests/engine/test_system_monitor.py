"""The training process's CPU and memory per epoch, as its epoch records keep them."""
from __future__ import annotations

import io
import mmap
import os
import sys
from pathlib import Path

import pytest

from sslcore.engine.system_monitor import cpu_percent, peak_resident_mib, resident_mib
from sslcore.engine.training_run import execute_run
from sslcore.runs import RunStore
from tests.conftest import tiny_config


def test_cpu_percent_is_cpu_time_over_wall_time_in_cores() -> None:
    assert cpu_percent(3.0, 2.0) == pytest.approx(150.0)  # one and a half cores busy
    assert cpu_percent(0.0, 2.0) == 0.0
    assert cpu_percent(1.0, 0.0) is None  # no interval to measure over


def test_resident_memory_reads_statm_pages_and_is_none_without_it(tmp_path: Path) -> None:
    statm = tmp_path / "statm"
    statm.write_text("5000 2560 300 10 0 900 0\n")  # size resident shared text lib data dt, in pages
    page = os.sysconf("SC_PAGE_SIZE")
    assert resident_mib(statm) == pytest.approx(2560 * page / 2**20)
    assert resident_mib(tmp_path / "absent") is None
    statm.write_text("garbage")
    assert resident_mib(statm) is None


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="resident memory is read from /proc on Linux")
def test_memory_figures_follow_what_the_process_holds() -> None:
    before = resident_mib()
    # 64 MiB of fresh pages from the OS, each touched (not the allocator's heap: a long test process may hold that
    # much freed memory still resident, and reuse it without the resident size moving)
    block = mmap.mmap(-1, 64 * 2**20)
    block.write(b"\x01" * len(block))
    after = resident_mib()
    assert before is not None and after is not None and after - before > 48
    assert peak_resident_mib() >= after - 1
    block.close()


def test_each_trained_epoch_records_the_process_cpu_and_memory(tmp_path: Path) -> None:
    run = RunStore(tmp_path).create(tiny_config(**{"train.epochs": 2, "train.threads": 1,
                                                   "train.device": "cpu"}))  # on a GPU machine too
    console = io.StringIO()
    assert execute_run(run, console=console) == "completed"
    epochs = run.metrics("epoch")
    assert [r["epoch"] for r in epochs] == [0, 1, 2]
    assert not any(k.startswith("sys_") for k in epochs[0])  # the untrained start: no epoch of work to measure
    for record in epochs[1:]:
        assert record["sys_threads"] == 1.0
        assert 5.0 < record["sys_cpu_percent"] < 100.0 * 1.5  # one thread (the checkpoint writer adds a little)
        assert record["sys_peak_rss_mib"] > 100  # torch alone is several hundred MiB
        if sys.platform.startswith("linux"):
            assert 100 < record["sys_rss_mib"] <= record["sys_peak_rss_mib"] + 1
        assert "sys_gpu_peak_mib" not in record  # on the CPU
    assert "sys_" not in console.getvalue()  # the terminal line stays about learning
