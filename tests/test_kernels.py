"""The pinned CPU kernels (harness.runs.kernels): an AVX-512 CPU computes an AVX2 CPU's bits, the pin
refuses to come too late, and the engine keys the kernels."""

import os
import subprocess
import sys
import textwrap

import pytest
import torch

from harness.runs.engine import Engine, entry_key
from harness.runs.kernels import describe

# A few AdamW steps of the tiny preset, stacked the way the suite trains; prints a hash of the weights.
_TRAIN = textwrap.dedent("""
    import hashlib, os, sys
    import torch
    if os.environ.get("PIN") == "1":
        from harness.runs.kernels import pin_portable
        pin_portable()
    torch.set_num_threads(1)
    from harness import tiny
    model = tiny.build(tiny.preset("tiny"), 0).train()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, betas=(0.9, 0.95))
    g = torch.Generator().manual_seed(0)
    for _ in range(8):
        ids = torch.randint(0, model.config.vocab_size, (8, 24), generator=g)
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward(); opt.step(); opt.zero_grad()
    h = hashlib.sha256()
    for k, v in sorted(model.state_dict().items()):
        h.update(v.detach().numpy().tobytes())
    print(torch.backends.cpu.get_cpu_capability(), h.hexdigest())
""")


def _train(**env) -> tuple[str, str]:
    clean = {k: v for k, v in os.environ.items() if k not in ("ATEN_CPU_CAPABILITY", "MKL_CBWR",
                                                               "MKL_ENABLE_INSTRUCTIONS")}
    out = subprocess.run([sys.executable, "-c", _TRAIN], env={**clean, **env}, capture_output=True,
                         text=True, timeout=300, check=True).stdout.split()
    return out[-2], out[-1]


def _native() -> str:
    clean = {k: v for k, v in os.environ.items() if k != "ATEN_CPU_CAPABILITY"}
    return subprocess.run([sys.executable, "-c", "import torch; print(torch.backends.cpu.get_cpu_capability())"],
                          env=clean, capture_output=True, text=True, check=True).stdout.strip()


@pytest.mark.skipif(not torch.backends.mkl.is_available(), reason="no MKL: nothing to pin on this CPU")
def test_a_pinned_process_computes_what_an_avx2_cpu_computes():
    # An AVX2-only CPU, emulated: ATen's AVX2 dispatch and MKL restricted to its AVX2 code path.
    avx2 = _train(ATEN_CPU_CAPABILITY="avx2", MKL_ENABLE_INSTRUCTIONS="AVX2")
    pinned = _train(PIN="1")
    assert pinned == avx2
    assert pinned[0] == "AVX2"


# The pinned bits of _TRAIN, computed on an Intel Xeon with AVX-512 and AMX (2026-12-04, the
# 10-layer tiny preset of tasks.VERSION 6; torch 2.13.0, transformers 5.24.0). The tiny baseline
# holds only where a CPU computes these same bits: on a CPU where this fails, expect
# `pytest hypotheses/` to move verdicts, and say so in the issue.
PINNED_BITS = "cabf93a98b74d1e180e9a4fc28ca1d28ccf6b3f8035b6259437b855b81b32639"


@pytest.mark.skipif(not torch.backends.mkl.is_available(), reason="no MKL: nothing to pin on this CPU")
def test_a_pinned_process_computes_the_bits_the_baseline_was_computed_with():
    """The cross-machine canary: every x86 CPU with AVX2 should compute these bits pinned."""
    import platform

    import transformers

    if (torch.__version__.split("+")[0], transformers.__version__) != ("2.13.0", "5.24.0"):
        pytest.skip(f"pinned under torch 2.13.0 / transformers 5.24.0, not {torch.__version__} / "
                    f"{transformers.__version__}")
    assert _train(PIN="1")[1] == PINNED_BITS, f"other bits on {platform.processor() or platform.machine()}"


@pytest.mark.skipif(not torch.backends.mkl.is_available(), reason="no MKL: nothing to pin on this CPU")
def test_unpinned_kernels_differ_where_the_cpu_has_wider_ones():
    """The reason for the pin, shown where it can be: on an AVX-512 CPU the native bits differ."""
    native = _native()
    if native != "AVX512":
        pytest.skip(f"this CPU's native kernels are {native}: no wider kernels to differ")
    assert _train()[1] != _train(PIN="1")[1]


def test_a_pin_after_the_first_kernel_is_refused():
    if _native() == "AVX2":
        pytest.skip("native kernels are AVX2 already: a late pin changes nothing")
    code = textwrap.dedent("""
        import torch
        torch.backends.cpu.get_cpu_capability()  # ATen fixes its dispatch here
        from harness.runs.kernels import pin_portable
        pin_portable()
    """)
    clean = {k: v for k, v in os.environ.items() if k != "ATEN_CPU_CAPABILITY"}
    done = subprocess.run([sys.executable, "-c", code], env=clean, capture_output=True, text=True)
    assert done.returncode != 0
    assert "did not take effect" in done.stderr


def test_the_suite_runs_pinned_and_the_engine_keys_the_kernels():
    from harness.runs import tiny_base

    assert describe() == "AVX2, MKL_CBWR=AVX2"  # the plugin pinned this (tiny) test process
    here = Engine.here()
    assert here.kernels == describe()
    spec = tiny_base(0)
    assert entry_key(spec, here, None) != entry_key(spec, Engine("cpu", kernels="AVX512"), None)
    assert "kernels" not in Engine("cpu").describe(spec)  # unrecorded: the keys from before stay
