"""``--emulate-avx2``: run a benchmark on this CPU as on one without AVX-512 and native bf16.

Our machines differ between sessions (some AMD EPYCs have AVX-512 with native bf16, some only AVX2), and issue 14's
targets were set on an AVX2 one. torch and the libraries under it each honour an ISA cap from the environment,
read once when they first run: ``ATEN_CPU_CAPABILITY`` (torch's own vectorised kernels), ``ONEDNN_MAX_CPU_ISA``
(oneDNN: convolutions, bf16 matmuls) and ``MKL_ENABLE_INSTRUCTIONS`` (MKL: fp32 matmuls). With all three at AVX2
every kernel runs AVX2 code and :func:`sslcore.engine.device.cpu_has_fast_bf16` says False, so "auto" precision
trains in fp32 as it would there. The clock, the cores, the caches and the memory stay this machine's: the
instructions are emulated, not the CPU, so ratios measured in one run carry over better than seconds.
"""
from __future__ import annotations

import argparse
import os
import sys

AVX2_CAPS = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_ENABLE_INSTRUCTIONS": "AVX2"}


def add_emulation_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--emulate-avx2", action="store_true",
                        help="cap torch, oneDNN and MKL at AVX2 (no AVX-512, no native bf16), as on our AVX2 machines")


def emulating_avx2() -> bool:
    """Whether this process runs under the AVX2 caps."""
    return all(os.environ.get(name) == value for name, value in AVX2_CAPS.items())


def reexec_if_emulating(args: argparse.Namespace) -> None:
    """With ``--emulate-avx2``, start this script again, same arguments, under the AVX2 caps (they must be in the
    environment before torch first runs a kernel); child processes inherit them. Returns when there is nothing to
    do, or in the started-again process."""
    if not args.emulate_avx2 or emulating_avx2():
        return
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable, *sys.argv], {**os.environ, **AVX2_CAPS})
