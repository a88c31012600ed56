"""Tests for the one place that picks device and precision: the bf16 rule and the machine line benchmarks print."""
from __future__ import annotations

import pytest
import torch

from sslcore.engine import device as device_module
from sslcore.engine.device import describe_machine, use_bf16

CPU = torch.device("cpu")


@pytest.mark.parametrize("capability, fast", [("AVX2", False), ("AVX512", False), ("DEFAULT", False),
                                              ("AVX512_BF16", True), ("AMX", True)])
def test_bf16_is_used_on_cpu_only_where_the_hardware_has_native_bf16(monkeypatch, capability, fast) -> None:
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: capability)
    assert device_module.cpu_has_fast_bf16() is fast
    assert use_bf16(CPU, "auto") is fast  # AVX2-only CPUs emulate bf16 and would run slower than fp32
    assert use_bf16(CPU, "fp32") is False and use_bf16(CPU, "bf16") is True  # an explicit choice wins


def test_machine_line_names_cpu_cores_isa_and_load() -> None:
    line = describe_machine()
    assert line.startswith("CPU: ") and "cores usable" in line and "ISA: " in line and "load average" in line
    assert f"fast bf16: {device_module.cpu_has_fast_bf16()}" in line
