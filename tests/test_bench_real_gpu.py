"""The real gpu profile's GPU benchmark (benchmarks/bench_real_gpu.py), rehearsed on the CPU: its
data fill every block, its run path trains, and its prediction scales by the real vocabulary."""

from __future__ import annotations

import pytest

from benchmarks import bench_real_gpu as bench
from harness import flops, tiny
from harness.claims.real import GPU_PROFILE


def test_the_benchmark_trains_full_blocks_on_the_cpu(tmp_path):
    m = bench.measure(tmp_path, "fp32", preset="smollm2-135m@2", steps=2, batch=2, max_len=64)
    assert m["tokens"] == 2 * 2 * 64 and m["mixed_precision"] == "no" and m["total_steps"] == 2
    assert "steady_tokens_per_s" not in m  # the loop times steady steps on a CUDA device only
    assert m["params"] == sum(p.numel() for p in tiny.build(tiny.preset("smollm2-135m@2"), 0).parameters())


def test_the_prediction_counts_the_real_vocabulary():
    config = tiny.preset(bench.PRESET).hf_config()
    assert (config.num_hidden_layers, config.hidden_size, config.num_key_value_heads) == (54, 576, 3)
    tokens = GPU_PROFILE.epochs * GPU_PROFILE.epoch_steps * GPU_PROFILE.batch * GPU_PROFILE.max_len
    byte_s = tokens / 1e6  # at a million tokens a second, before the vocabulary's share
    assert bench.profile_run_s(1e6) > byte_s
    # the LM head of 49152 x 576 (tied) is ~170 MFLOP a token of the real model's ~1.7 GFLOP
    assert bench.profile_run_s(1e6) / byte_s == pytest.approx(
        1 + 6 * (bench.REAL_VOCAB - tiny.VOCAB_SIZE) * 576 / flops.flops_per_token(config, 1024), rel=1e-6)
