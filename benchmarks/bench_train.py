"""Training throughput of the one loop: tiny steps per second on one CPU thread; MFU on a GPU.

Run: pytest benchmarks/bench_train.py --benchmark-only -s      (GPU part: -m gpu, needs CUDA)
What: `tiny` preset (8 layers, hidden 64, ~0.3M parameters), batch 32 of the target domain
(~21 tokens each), fp32, full fine-tune and LoRA; a whole default fine-tune run (load base,
train 64 steps, two held-out evals, snapshots written) against a warm base; and on a GPU a
`small` decoder (UPLAB_BENCH_SMALL="layers,hidden", default 16 layers x 1024) in bf16 on packed
1024-byte blocks of local text, reporting tokens/s and model FLOPs utilisation (6·N per token).
"""

from __future__ import annotations

import os

import pytest
import torch

from harness import tiny
from harness.data import ByteTokenizer, DataSpec, Local, load, tasks
from harness.runs import Checkpoint, Scratch, finetune, get_or_run, make, tiny_base
from harness.runs.runner import execute
from harness.runs.cache import _remove
from harness.train import Full, Lora, train

STEPS = 32
TOK = ByteTokenizer()


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # the claims suite runs one training per core
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize("mode", ["full", "lora"])
def test_tiny_steps_per_second(benchmark, mode):
    spec = make(base=Scratch(), steps=STEPS, snapshot_epochs=False, mode=Lora() if mode == "lora" else Full(),
                data=DataSpec.synthetic("target", size=STEPS * 32, eval_size=32))
    train_set, evals = load(spec.data, TOK)

    def run():
        model = tiny.build(tiny.PRESETS["tiny"], 0)
        return train(model, spec, train_set, {}, pad_id=TOK.pad_id, sink=lambda *a: None, progress=False)

    metrics = benchmark.pedantic(run, rounds=3, iterations=1, warmup_rounds=1)
    sps = STEPS / benchmark.stats.stats.median
    benchmark.extra_info.update(steps_per_s=sps, tokens_per_s=metrics["tokens"] / benchmark.stats.stats.median)
    print(f"\ntiny {mode}: {sps:.1f} steps/s ({metrics['tokens'] / benchmark.stats.stats.median:.0f} tokens/s), "
          f"batch 32, 1 thread")


def test_default_finetune_run_seconds(benchmark, tmp_path):
    base = tiny_base(0)
    get_or_run(base, tmp_path)  # the shared base, trained once outside the timing
    spec = finetune(base)

    def run():
        _remove(tmp_path / spec.key, tmp_path)
        return get_or_run(spec, tmp_path)

    benchmark.pedantic(run, rounds=3, iterations=1)
    seconds = benchmark.stats.stats.median
    benchmark.extra_info.update(finetune_s=seconds)
    print(f"\ndefault tiny fine-tune run (64 steps, evals, snapshots): {seconds:.2f} s")


def small_run(tmp, layers: int, hidden: int, steps: int, batch: int, max_len: int) -> dict:
    """Train a `small` decoder from a local checkpoint on packed local text; returns the metrics."""
    spec = tiny.TinySpec(num_layers=layers, hidden=hidden, intermediate=4 * hidden, heads=max(1, hidden // 64),
                         kv_heads=max(1, hidden // 128), max_positions=max_len)
    base = tiny.save(spec, 0, tmp / "base")
    lines = [tasks.text(e) for d in ("original", "target")
             for e in tasks.generate(d, "train", steps * batch * max_len // 40 + 100, 0)]
    (tmp / "text.txt").write_text("\n".join(lines))
    text = Local(path=str(tmp / "text.txt"))
    run = make(base=Checkpoint(path=str(base)), steps=steps, lr=3e-4, snapshot_epochs=False,
               data=DataSpec(train=text, evals={"text": text}, batch_size=batch, max_len=max_len, eval_size=batch))
    (tmp / "out").mkdir()
    return execute(run, tmp / "out", tmp / "cache")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (bf16 small-scale MFU)")
def test_small_gpu_mfu(tmp_path):
    layers, hidden = (int(x) for x in os.environ.get("UPLAB_BENCH_SMALL", "16,1024").split(","))
    m = small_run(tmp_path, layers, hidden, steps=40, batch=32, max_len=1024)
    print(f"\nsmall {layers}x{hidden} ({m['params'] / 1e6:.0f}M params) on {torch.cuda.get_device_name()}, "
          f"{m['mixed_precision']}: {m['steps_per_s']:.2f} steps/s, {m['tokens_per_s']:.0f} tokens/s, "
          f"MFU {m['mfu']:.1%} (6N, steady state after 5 steps), loss {m['train']['loss'][0]:.2f} -> "
          f"{m['train']['loss'][-1]:.2f}")
    assert m["mixed_precision"] == "bf16" and m["train"]["loss"][-1] < m["train"]["loss"][0]
