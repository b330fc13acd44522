"""Which CPU kernels compute a run, and pinning the portable ones for the suite-trained worlds.

fp32 results of one computation differ between the kernels torch and MKL pick for a CPU (AVX2,
AVX-512, ...): the same sums in another order. The tiny world amplifies such last bits: 1200
pre-training steps turn them into other bases (6.5-11 % apart in weights), so a baseline recorded
on one CPU was a fresh draw of the 12 bases on the next (2026-12-03: the same cache keys, 16
tiny verdicts moved; docs/tiny-world.md "Kernels and the recipe's margin").

Pinned, ATen dispatches its AVX2 kernels (`ATEN_CPU_CAPABILITY`) and MKL computes in its AVX2
code path on any CPU that has one (conditional numerical reproducibility, `MKL_CBWR`): an AVX-512
CPU then computes an AVX2 CPU's bits (tests/test_kernels.py checks it against MKL restricted to
AVX2, the way an AVX2-only CPU runs it). The pin is for the worlds the suite trains from scratch
(tiny, small on a CPU); a real pretrained model's short fine-tune does not amplify last bits into
other verdicts, and its arithmetic-bound steps keep the fastest kernels.

Both variables are read lazily: ATen's when it first picks a vectorised CPU kernel, MKL's at its
first call, so the pin works after `import torch` but not after the first computation. A late pin
of ATen's is refused (rather than record kernels that are not the ones in use); MKL's mode cannot
be read back, so tests/test_kernels.py checks the bits of a process pinned the way the suite pins.
A variable the user set is left alone; the engine (harness.runs.engine) records what was in
effect, so a cache entry computed by other kernels is never handed back.
"""

from __future__ import annotations

import os
import platform

from harness.errors import UplabError

PORTABLE = {"ATEN_CPU_CAPABILITY": "avx2", "MKL_CBWR": "AVX2"}
_X86 = {"x86_64", "amd64", "i386", "i686"}


def pin_portable() -> str:
    """Pin this process's CPU kernels to AVX2's (unless the user set them); returns `describe()`.

    Raises if torch already dispatched with other kernels: the pin came too late to take effect."""
    if platform.machine().lower() not in _X86:
        return describe()  # no AVX2 to pin to; the engine records what runs instead
    for name, value in PORTABLE.items():
        os.environ.setdefault(name, value)
    import torch

    wanted = os.environ["ATEN_CPU_CAPABILITY"].upper()
    got = torch.backends.cpu.get_cpu_capability()
    if wanted in ("AVX2", "AVX512") and got != wanted:
        raise UplabError(f"ATEN_CPU_CAPABILITY={wanted.lower()} did not take effect (torch dispatches "
                         f"{got}): a CPU kernel ran before uplab pinned the kernels; pin before the "
                         f"first tensor operation")
    return describe()


def describe() -> str:
    """The CPU kernels this process computes with, e.g. "AVX2, MKL_CBWR=AVX2" or "AVX512"."""
    import torch

    out = torch.backends.cpu.get_cpu_capability()
    cbwr = os.environ.get("MKL_CBWR")
    if cbwr and torch.backends.mkl.is_available():
        out += f", MKL_CBWR={cbwr}"
    return out
