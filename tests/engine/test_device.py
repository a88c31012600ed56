"""Tests for the one place that picks device and precision: the bf16 rule and the machine line benchmarks print."""
from __future__ import annotations

import pytest
import torch

from sslcore.engine import device as device_module
from sslcore.engine.device import describe_machine, use_bf16

CPU = torch.device("cpu")
CONV = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.Flatten(), torch.nn.LazyLinear(2))
MLP = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2))


@pytest.mark.parametrize("flags, fast", [({"avx2", "fma"}, False), ({"avx2", "avx512f", "avx512_vnni"}, False),
                                         (set(), False), ({"avx512f", "avx512_bf16"}, True),
                                         ({"amx_bf16", "amx_tile"}, True)])
def test_bf16_is_used_on_cpu_only_where_the_hardware_has_native_bf16(monkeypatch, flags, fast) -> None:
    monkeypatch.setattr(device_module, "cpu_model_and_flags", lambda: ("some CPU", frozenset(flags)))
    monkeypatch.setattr(device_module, "_torch_sees_native_bf16", lambda: False)
    assert device_module.cpu_has_fast_bf16() is fast
    assert use_bf16(CPU, "auto", CONV) is fast  # CPUs without it emulate bf16 and would run slower than fp32
    assert use_bf16(CPU, "auto", MLP) is False  # small matmuls ran no faster in bf16, some slower
    assert use_bf16(CPU, "auto") is False  # no model to judge by
    for model in (CONV, MLP, None):  # an explicit choice wins
        assert use_bf16(CPU, "fp32", model) is False and use_bf16(CPU, "bf16", model) is True


@pytest.mark.parametrize("cap, fast", [(None, True), ("AVX2", False), ("avx512_core", False),
                                       ("AVX512_CORE_VNNI", False), ("AVX512_CORE_BF16", True),
                                       ("AVX512_CORE_AMX", True), ("ALL", True)])
def test_an_onednn_isa_cap_below_bf16_turns_bf16_off_as_on_an_older_cpu(monkeypatch, cap, fast) -> None:
    monkeypatch.setattr(device_module, "cpu_model_and_flags", lambda: ("some CPU", frozenset({"avx512_bf16"})))
    monkeypatch.delenv("DNNL_MAX_CPU_ISA", raising=False)
    if cap is None:
        monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    else:
        monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", cap)
    assert device_module.cpu_has_fast_bf16() is fast  # capped below bf16, oneDNN would emulate it: slower than fp32
    assert use_bf16(CPU, "auto", CONV) is fast
    assert ("oneDNN capped at" in describe_machine()) is (cap is not None)


def test_the_old_name_of_the_cap_counts_too(monkeypatch) -> None:
    monkeypatch.setattr(device_module, "cpu_model_and_flags", lambda: ("some CPU", frozenset({"amx_bf16"})))
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    monkeypatch.setenv("DNNL_MAX_CPU_ISA", "AVX2")
    assert device_module.cpu_has_fast_bf16() is False


def test_machine_line_names_cpu_cores_isa_and_load() -> None:
    line = describe_machine()
    assert line.startswith("CPU: ") and "cores usable" in line and "ISA: " in line and "load average" in line
    assert f"fast bf16: {device_module.cpu_has_fast_bf16()}" in line


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_a_run_records_the_precision_it_trained_in(tmp_path, precision) -> None:
    from sslcore.config import default_config
    from sslcore.engine.training_run import execute_run
    from sslcore.runs import RunStore

    run = RunStore(tmp_path).create(default_config(**{
        "data.dataset": "digits", "train.epochs": 1, "encoder.width": 8, "train.threads": 1,
        "train.snapshot_images": 2, "train.precision": precision}))
    assert execute_run(run) == "completed"
    assert run.status()["precision"] == precision  # what the run header shows next to the device


@pytest.mark.parametrize("encoder, native, expected", [("convnet", True, "bf16"), ("mlp", True, "fp32"),
                                                       ("convnet", False, "fp32")])
def test_auto_precision_trains_conv_nets_in_bf16_on_native_bf16_cpus(tmp_path, monkeypatch, encoder, native,
                                                                     expected) -> None:
    from sslcore.config import default_config
    from sslcore.engine.training_run import execute_run
    from sslcore.runs import RunStore

    monkeypatch.setattr(device_module, "cpu_has_fast_bf16", lambda: native)
    run = RunStore(tmp_path).create(default_config(**{
        "data.dataset": "digits", "train.epochs": 1, "encoder.name": encoder, "encoder.width": 8,
        "train.threads": 1, "train.snapshot_images": 2}))
    assert execute_run(run) == "completed"
    assert run.status()["precision"] == expected


def test_the_epoch_monitor_encodes_in_the_trainers_precision_but_runs_heads_and_scores_in_fp32() -> None:
    from sslcore.config import default_config
    from sslcore.data import load_run_data
    from sslcore.engine.monitor import EpochEvaluator
    from sslcore.engine.state import TrainState
    from sslcore.engine.trainer import Trainer, build_task

    config = default_config(**{"data.dataset": "digits", "encoder.width": 8, "task.name": "simclr"})
    data = load_run_data(config.data)
    torch.manual_seed(0)
    trainer = Trainer.create(config, build_task(config, data), data, CPU)
    seen: list[torch.dtype] = []
    trainer.task.encoder.register_forward_hook(lambda module, args, out: seen.append(out.dtype))
    head_inputs: list[torch.dtype] = []
    trainer.task.projector.register_forward_hook(lambda module, args, out: head_inputs.append(args[0].dtype))
    figures = {}
    for bf16 in (False, True):
        trainer.bf16 = bf16
        monitor = EpochEvaluator(data, knn_k=20, seed=0, bank_images=200, test_images=128)
        monitor.on_fit_start(TrainState(epochs=1, steps_per_epoch=1, batch_size=8), trainer)
        state = TrainState(epochs=1, steps_per_epoch=1, batch_size=8)
        seen.clear()
        monitor.on_epoch_end(state)
        figures[bf16] = (set(seen), state.epoch_metrics)
    assert figures[False][0] == {torch.float32}
    assert torch.bfloat16 in figures[True][0]  # the k-NN, collapse and view features: as the steps run
    assert set(head_inputs) == {torch.float32}  # the heads (test pair accuracy, alignment): fp32 either way
    fp32, bf16 = figures[False][1], figures[True][1]
    assert abs(bf16["test_pair_acc"] - fp32["test_pair_acc"]) <= 0.03 and 0 < fp32["test_pair_acc"] < 1
    assert abs(bf16["knn_acc"] - fp32["knn_acc"]) <= 0.05 and abs(bf16["eff_rank"] / fp32["eff_rank"] - 1) < 0.05
    assert all(isinstance(v, (int, float)) for v in bf16.values())
