"""Device and precision are chosen here, once; everything else receives a ``torch.device``."""
from __future__ import annotations

import contextlib
import functools
import os

import torch
from torch import nn


class DeviceUnavailableError(RuntimeError):
    """The configured device (train.device) is not present on this machine."""


def pick_device(preference: str = "auto", index: int | None = None) -> torch.device:
    """cuda > mps > cpu for 'auto'; an explicit choice that is not available is an error, not a silent fallback
    (DeviceUnavailableError naming the field and the choices that work here).

    ``index``: the GPU of this process when several share a machine (torchrun's local rank); CUDA only.
    """
    device = _pick_type(preference)
    if device.type == "cuda" and index is not None:
        if index >= torch.cuda.device_count():
            raise RuntimeError(f"process {index} of this machine has no GPU of its own: {torch.cuda.device_count()} "
                               "visible; start at most one process per GPU (torchrun --nproc-per-node)")
        return torch.device("cuda", index)
    return device


def _pick_type(preference: str) -> torch.device:
    if preference == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if preference == "cuda" and not torch.cuda.is_available():
        raise DeviceUnavailableError("train.device = 'cuda' but no CUDA GPU is visible; use auto or cpu")
    if preference == "mps" and not torch.backends.mps.is_available():
        raise DeviceUnavailableError("train.device = 'mps' but Apple's MPS backend is not available; use auto or cpu")
    return torch.device(preference)


def cpu_has_fast_bf16() -> bool:
    """True on CPUs with native bf16 arithmetic (AVX512-BF16: Intel Cooper Lake and later, AMD Zen 4 and later;
    AMX: Intel Sapphire Rapids and later); elsewhere bf16 is emulated and slower than fp32.

    The CPU's own feature flags decide, not torch's dispatch capability: that names the vector width only
    ("AVX512" on such CPUs too, torch 2.14), so it never said bf16. On a 2-core AMD EPYC with avx512_bf16,
    bf16 matmuls ran 2.2x the fp32 GFLOP/s and the default training step 1.5x the images/s.
    """
    _, flags = cpu_model_and_flags()
    native = any(flag in flags for flag in NATIVE_BF16_FLAGS) or _torch_sees_native_bf16()
    return native and onednn_may_use_bf16()


#: oneDNN's ISA caps (``ONEDNN_MAX_CPU_ISA``) below the first with bf16 instructions (AVX512_CORE_BF16); the
#: caps above it (AVX512_CORE_BF16, AVX512_CORE_FP16, AVX512_CORE_AMX, AVX10_*, ALL) keep native bf16.
_ONEDNN_CAPS_WITHOUT_BF16 = ("SSE41", "AVX", "AVX2", "AVX2_VNNI", "AVX2_VNNI_2", "AVX512_CORE", "AVX512_CORE_VNNI")


def onednn_may_use_bf16() -> bool:
    """False where ``ONEDNN_MAX_CPU_ISA`` (or its old name ``DNNL_MAX_CPU_ISA``) caps oneDNN, which runs torch's
    CPU convolutions and matmuls, below the instructions of native bf16: bf16 is then emulated there, as on a CPU
    without them. A user sets the cap to work around an ISA's bug, or to see how the engine runs on an older CPU
    (``ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2``, as the benchmarks' ``--emulate-avx2`` does)."""
    return (onednn_isa_cap() or "").strip().upper() not in _ONEDNN_CAPS_WITHOUT_BF16


def onednn_isa_cap() -> str | None:
    """oneDNN's ISA cap as the environment sets it (``ONEDNN_MAX_CPU_ISA``, or its old name), or None."""
    return os.environ.get("ONEDNN_MAX_CPU_ISA") or os.environ.get("DNNL_MAX_CPU_ISA")


def _torch_sees_native_bf16() -> bool:
    """torch's own CPU feature probe (private helpers, absent from some builds), for systems without /proc."""
    probes = (getattr(torch.cpu, "_is_avx512_bf16_supported", None), getattr(torch.cpu, "_is_amx_tile_supported", None))
    return any(probe is not None and bool(probe()) for probe in probes)


def use_bf16(device: torch.device, precision: str, model: nn.Module | None = None) -> bool:
    """Whether to autocast to bf16: 'bf16' forces it, 'fp32' never; 'auto' on CUDA GPUs with bf16, and on CPUs
    with native bf16 (:func:`cpu_has_fast_bf16`) for a convolutional ``model`` only (none given: no).

    Why convolutions: one training step of 128 images in bf16 against fp32 on a 2-core AMD EPYC with
    avx512_bf16 ran every convolutional task 1.45-2.0x faster (SimCLR + convnet 1.50x, BYOL 1.65x, autoencoder
    1.88x, resnet18 2.0x), but MAE on vit_tiny (small matmuls on the visible patches) 0.90x, the table tasks'
    MLPs 0.88-1.06x and SimCLR on vit_tiny 1.16x: bf16 only pays where oneDNN's bf16 convolutions do the work.
    """
    if precision == "fp32":
        return False
    if precision == "bf16":
        return True
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type != "cpu" or model is None or not cpu_has_fast_bf16():
        return False
    from sslcore.models.layout import has_convolutions  # the models package is heavier than this module

    return has_convolutions(model)


def autocast(device: torch.device, enabled: bool) -> contextlib.AbstractContextManager:
    """bf16 autocast on ``device`` when ``enabled``, otherwise a no-op context."""
    if not enabled:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


def configure_threads(threads: int, processes: int = 1) -> int:
    """Set torch's intra-op threads (0 = this process's share of the cores it may use, when ``processes``
    train on this machine at once); returns the number set."""
    available = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    n = threads if threads > 0 else max(1, available // processes)
    torch.set_num_threads(n)
    return n


#: The ISA flags that decide CPU matmul speed and whether bf16 pays (as /proc/cpuinfo spells them).
_ISA_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_tile")
#: The flags of native bf16 arithmetic (the bf16 rule, :func:`cpu_has_fast_bf16`).
NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16")


@functools.lru_cache(maxsize=1)
def cpu_model_and_flags() -> tuple[str, frozenset[str]]:
    """The CPU's model name and feature flags from /proc/cpuinfo (Linux); elsewhere the platform's processor
    name and no flags."""
    model, flags = "unknown CPU", frozenset[str]()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                key, _, value = line.partition(":")
                if key.strip() == "model name" and model == "unknown CPU":
                    model = value.strip()
                elif key.strip() == "flags" and not flags:
                    flags = frozenset(value.split())
    except OSError:  # not Linux
        import platform
        model = platform.processor() or model
    return model, flags


def describe_machine() -> str:
    """One line for benchmark output: CPU model, usable cores, ISA flags, torch's CPU capability, load average.

    Benchmarks print it next to every figure because the machines differ (AVX2-only AMD against AVX-512/AMX
    Intel) and are shared (the load average says how many other jobs ran at the same time).
    """
    model, flags = cpu_model_and_flags()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    isa = " ".join(f for f in _ISA_FLAGS if f in flags) or "n/a"
    load = " ".join(f"{x:.1f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"
    cap = onednn_isa_cap()
    capped = f", oneDNN capped at {cap}" if cap else ""  # an emulated older CPU (benchmarks' --emulate-avx2)
    return (f"CPU: {model}, {cores} cores usable, ISA: {isa}, torch capability "
            f"{torch.backends.cpu.get_cpu_capability()}{capped}, fast bf16: {cpu_has_fast_bf16()}, load average {load}")
