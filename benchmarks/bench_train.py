"""Training throughput of the one loop: tiny steps per second on one CPU thread.

Run: pytest benchmarks/bench_train.py --benchmark-only -s      (MFU on a GPU: bench_mfu.py)
What: `tiny` preset (8 layers, hidden 64, ~0.3M parameters), batch 32 of the target domain
(~21 tokens each), fp32, full fine-tune and LoRA; a whole default fine-tune run (load base,
train 64 steps, two held-out evals, snapshots written) against a warm base.
"""

from __future__ import annotations


import pytest
import torch

from harness import tiny
from harness.data import ByteTokenizer, DataSpec, load
from harness.runs import Scratch, finetune, get_or_run, make, tiny_base
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
