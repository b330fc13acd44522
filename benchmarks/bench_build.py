"""Native upscale build vs mergekit's run_merge on the same config: a ratio measured in one run.

Run: pytest benchmarks/bench_build.py --benchmark-only -s
Size: UPLAB_BENCH_HIDDEN (default 512) x 8 layers, fp32, the seed's contiguous layout.
"""

from __future__ import annotations

import os
import shutil
import statistics
import time

import pytest

from harness import tiny
from harness.build import native, reference
from harness.strategies import contiguous

HIDDEN = int(os.environ.get("UPLAB_BENCH_HIDDEN", "512"))
ROUNDS = 3


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    spec = tiny.TinySpec(num_layers=8, hidden=HIDDEN, intermediate=4 * HIDDEN, heads=8,
                         kv_heads=4, tie_embeddings=False)
    return tiny.save(spec, 0, tmp_path_factory.mktemp("bench") / "base")


def _timed(build, source, out, plan) -> float:
    shutil.rmtree(out, ignore_errors=True)
    t0 = time.perf_counter()
    build.upscale_checkpoint(source, plan, out, progress=False)
    return time.perf_counter() - t0


def test_native_vs_mergekit(benchmark, source, tmp_path):
    plan = contiguous(2, 6, num_layers=8, copies=2)
    size = sum(f.stat().st_size for f in source.glob("*.safetensors"))
    _timed(reference, source, tmp_path / "warm", plan)  # imports and page cache for both
    mergekit_s = statistics.median(_timed(reference, source, tmp_path / "mk", plan) for _ in range(ROUNDS))

    def build():
        shutil.rmtree(tmp_path / "nat", ignore_errors=True)
        native.upscale_checkpoint(source, plan, tmp_path / "nat", progress=False)

    benchmark.pedantic(build, rounds=ROUNDS, iterations=1)
    native_s = benchmark.stats.stats.median
    ratio = mergekit_s / native_s
    benchmark.extra_info.update(source_mb=size / 1e6, mergekit_s=mergekit_s, native_s=native_s,
                                speedup_vs_mergekit=ratio)
    print(f"\nsource {size / 1e6:.0f} MB -> 14 layers: native {native_s:.3f} s, "
          f"mergekit {mergekit_s:.3f} s, native is {ratio:.2f}x mergekit's speed")
