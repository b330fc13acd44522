"""Model FLOPs utilisation of `small` training on one GPU (DESIGN §10: >= 40 % on an H100 in bf16).

Run: pytest benchmarks/bench_mfu.py --benchmark-only -s        (needs CUDA; skips without it)
What: the `small-512` preset (mistral, 16 layers, hidden 512, ~50M parameters) from scratch through
the real run path (RunSpec -> get_or_run -> the one loop), batch 32 of packed 1024-token blocks
of both synthetic domains' text, 40 steps, in bf16 autocast; and the same run in fp32 as the
baseline (matmul precision as the process has it: torch's default "highest" means no TF32).
Reports the loop's steady-state tokens/s (after its warm-up steps) and MFU by harness.flops:
PaLM's 6·N + 12·L·h_attn·s FLOPs per token, the causal mask not halved, against the device's
dense bf16 peak. Numbers are printed and stored in extra_info; speed is a ratio to the baseline,
never a timed assert.
"""

from __future__ import annotations

import pytest
import torch

from harness import flops, tiny
from harness.data import DataSpec, Local, tasks
from harness.runs import Scratch, get_or_run, make

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(),
                                 reason="needs a CUDA device (bf16 MFU of the small preset)")]

PRESET, STEPS, BATCH, MAX_LEN = "small-512", 40, 32, 1024
TARGET = 0.40  # DESIGN §10, on an H100


def packed_text(path, steps: int = STEPS, batch: int = BATCH, max_len: int = MAX_LEN) -> Local:
    """Enough synthetic lines for `steps` batches of full `max_len`-token blocks (~18 bytes a line),
    and a held-out split (5 % of the records) to score."""
    per_domain = max(200, steps * batch * max_len // (2 * 18) + 1)
    lines = [tasks.text(e) for d in ("original", "target") for e in tasks.generate(d, "train", per_domain, 0)]
    path.write_text("\n".join(lines))
    return Local(path=str(path))


def run_spec(text: Local, precision: str):
    # Text records are packed into full MAX_LEN blocks, so every token attends over s = MAX_LEN.
    data = DataSpec(train=text, evals={"text": text}, batch_size=BATCH, max_len=MAX_LEN, eval_size=BATCH)
    return make(base=Scratch(preset=PRESET), steps=STEPS, lr=3e-4, snapshot_epochs=False,
                precision=precision, data=data)


def test_small_bf16_mfu(benchmark, tmp_path):
    text = packed_text(tmp_path / "text.txt")
    cache = tmp_path / "cache"
    # The baseline first: the bf16 run then starts in a process whose CUDA context is warm.
    base = get_or_run(run_spec(text, "fp32"), cache).metrics
    m = benchmark.pedantic(lambda: get_or_run(run_spec(text, "bf16"), cache).metrics, rounds=1, iterations=1)

    config = tiny.PRESETS[PRESET].hf_config()
    device = torch.cuda.get_device_name()
    tps = m["steady_tokens_per_s"]
    util = flops.mfu(tps, config, MAX_LEN, device)
    speedup = tps / base["steady_tokens_per_s"]
    fp32_matmul = torch.get_float32_matmul_precision()
    benchmark.extra_info.update(device=device, tokens_per_s=tps, mfu=util, bf16_over_fp32=speedup,
                                fp32_tokens_per_s=base["steady_tokens_per_s"], fp32_matmul=fp32_matmul,
                                flops_per_token=flops.flops_per_token(config, MAX_LEN))
    versus = (f"{util:.1%}, {util / TARGET:.2f}x the {TARGET:.0%} target" if util is not None
              else f"unknown: no peak for {device!r} in harness.flops.PEAK_BF16")
    print(f"\n{PRESET} ({config.num_hidden_layers}x{config.hidden_size}, {m['params'] / 1e6:.1f}M params) "
          f"on {device}, batch {BATCH}x{MAX_LEN}, {STEPS} steps:\n"
          f"  bf16: {tps:,.0f} tokens/s, MFU {versus} (6N + 12·L·h·s, causal not halved)\n"
          f"  fp32 baseline (matmul precision {fp32_matmul!r}): {base['steady_tokens_per_s']:,.0f} tokens/s; "
          f"bf16 is {speedup:.2f}x it\n"
          f"  loss {m['train']['loss'][0]:.2f} -> {m['train']['loss'][-1]:.2f}")
    assert (m["mixed_precision"], base["mixed_precision"]) == ("bf16", "no")
    # every step saw full blocks: the s in the FLOP count is the sequence the model really ran
    assert m["tokens"] == STEPS * BATCH * MAX_LEN, f"{m['tokens']} tokens, not {STEPS}x{BATCH}x{MAX_LEN}"
    assert m["train"]["loss"][-1] < m["train"]["loss"][0], "bf16 training did not lower the loss"
