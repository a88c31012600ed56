"""Concurrent jobs share the cores: a lone job gets them all, two jobs split them."""
from __future__ import annotations

import fcntl
from pathlib import Path

import torch

from sslcore.runs.process_manager import CoreShare, cpu_count


def test_threads_follow_the_number_of_busy_slots(tmp_path: Path) -> None:
    slot_dir = tmp_path / ".slots"
    slot_dir.mkdir()
    own = open(slot_dir / "slot-0.lock", "w")
    fcntl.flock(own, fcntl.LOCK_EX | fcntl.LOCK_NB)
    share = CoreShare(slot_dir, slots=2, own=own)
    try:
        share.rebalance()
        assert share.busy_slots() == 1 and torch.get_num_threads() == cpu_count()
        with open(slot_dir / "slot-1.lock", "w") as other:  # a second job takes the other slot
            fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
            share.rebalance()
            assert share.busy_slots() == 2 and torch.get_num_threads() == max(1, cpu_count() // 2)
        share.rebalance()
        assert torch.get_num_threads() == cpu_count()
    finally:
        own.close()
        torch.set_num_threads(1)
