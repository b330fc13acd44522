"""Training throughput of the one loop: tiny steps per second on one CPU thread.

Run: pytest benchmarks/bench_train.py --benchmark-only -s      (MFU on a GPU: bench_mfu.py)
What: `tiny` preset (10 layers, hidden 16, 27.5k parameters), batch 32 of the target domain,
fp32, full fine-tune and LoRA; a whole default fine-tune run (load base, train, two held-out
evals, snapshots written) against a warm base.

Seeds together (harness.train.ensemble): tokens/s of 12 seeds trained as one stacked computation
against the same 12 seeds through the per-seed loop, on today's `tiny` preset (10 layers), the
deep-base control `tiny@18` and the 8-layer world's `tiny8` (hidden 64), each trainer in its own
process so that its peak RSS is its own. Script:
    python benchmarks/bench_train.py [--seeds 12] [--steps 32] [--batch 32] [--preset tiny] [--device cuda]
The CPU comparison hides any GPU from its processes (CUDA_VISIBLE_DEVICES=""). When a CUDA device
exists, the same ratio on it (bf16 autocast, both trainers; `tiny` and `small`, where one step is
a few kernel launches per layer and stacking seeds shares them) is printed too.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from pathlib import Path

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


# -- seeds together ---------------------------------------------------------------------------
PRESETS = ("tiny", "tiny@18", "tiny8")  # harness.tiny presets: today's, the deep control, the 8-layer world


def _seed_specs(seeds: int, steps: int, batch: int):
    data = DataSpec.synthetic("target", size=steps * batch, eval_size=32, batch_size=batch)
    return [make(base=Scratch(seed=s), seed=s, steps=steps, snapshot_epochs=False, data=data)
            for s in range(seeds)]


def measure(trainer: str, preset: str, seeds: int, steps: int, batch: int = 32) -> dict:
    """Train `seeds` seeds (fresh models) one way; training tokens/s (snapshots excluded) and peak RSS."""
    from harness.train.ensemble import train_many

    torch.set_num_threads(1)
    specs = _seed_specs(seeds, steps, batch)
    train_set, _ = load(specs[0].data, TOK)
    models = [tiny.build(tiny.preset(preset), s.seed) for s in specs]
    if trainer == "loop":
        out = [train(m, s, train_set, {}, pad_id=TOK.pad_id, sink=lambda *a: None, progress=False)
               for m, s in zip(models, specs)]
        busy = sum(o["tokens"] / o["tokens_per_s"] for o in out)
    else:
        out = train_many(models, specs, train_set, {}, pad_id=TOK.pad_id, sinks=[lambda *a: None] * seeds,
                         progress=False)
        busy = out[0]["tokens"] / out[0]["tokens_per_s"]  # one shared training time
    tokens = sum(o["tokens"] for o in out)
    return {"trainer": trainer, "preset": preset, "seeds": seeds, "steps": steps, "batch": batch, "tokens": tokens,
            "busy_s": busy, "tokens_per_s": tokens / busy,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def measure_in_process(trainer: str, preset: str, seeds: int, steps: int, batch: int, device: str = "cpu") -> dict:
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")]))}
    if device == "cpu":  # both trainers take a CUDA device whenever they see one
        env["CUDA_VISIBLE_DEVICES"] = ""
    done = subprocess.run([sys.executable, __file__, "--worker", trainer, preset, str(seeds), str(steps),
                           str(batch)],
                          env=env, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def compare(preset: str, seeds: int = 12, steps: int = 32, batch: int = 32, device: str = "cpu") -> dict:
    loop = measure_in_process("loop", preset, seeds, steps, batch, device)
    stacked = measure_in_process("stacked", preset, seeds, steps, batch, device)
    assert loop["tokens"] == stacked["tokens"]  # the same batches, counted the same way
    return {"preset": preset, "seeds": seeds, "steps": steps, "batch": batch, "loop": loop, "stacked": stacked,
            "device": device, "ratio": stacked["tokens_per_s"] / loop["tokens_per_s"]}


def line(r: dict) -> str:
    lo, st = r["loop"], r["stacked"]
    where = "1 thread" if r.get("device", "cpu") == "cpu" else f"{r['device']}, bf16 autocast"
    return (f"{r['preset']}, {r['seeds']} seeds x {r['steps']} steps of batch {r['batch']}, "
            f"{where}: "
            f"per-seed loop {lo['tokens_per_s']:.0f} tokens/s (peak RSS {lo['peak_rss_mb']:.0f} MB), "
            f"stacked {st['tokens_per_s']:.0f} tokens/s (peak RSS {st['peak_rss_mb']:.0f} MB): "
            f"ratio {r['ratio']:.2f}x")


@pytest.mark.parametrize("preset", PRESETS)
def test_seeds_together_tokens_per_second(benchmark, preset):
    result = benchmark.pedantic(compare, args=(preset,), rounds=1, iterations=1)
    benchmark.extra_info.update(ratio=result["ratio"], loop_tokens_per_s=result["loop"]["tokens_per_s"],
                                stacked_tokens_per_s=result["stacked"]["tokens_per_s"],
                                loop_peak_rss_mb=result["loop"]["peak_rss_mb"],
                                stacked_peak_rss_mb=result["stacked"]["peak_rss_mb"])
    print("\n" + line(result))


GPU_PRESETS = ("tiny", "small")  # `small` is the scale the stacked trainer serves on a GPU


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("preset", GPU_PRESETS)
def test_seeds_together_tokens_per_second_on_the_gpu(benchmark, preset):
    result = benchmark.pedantic(compare, args=(preset,), kwargs={"steps": 64, "device": "cuda"},
                                rounds=1, iterations=1)
    benchmark.extra_info.update(device="cuda", ratio=result["ratio"],
                                loop_tokens_per_s=result["loop"]["tokens_per_s"],
                                stacked_tokens_per_s=result["stacked"]["tokens_per_s"])
    print("\n" + line(result))


if __name__ == "__main__":
    if sys.argv[1:2] == ["--worker"]:
        trainer, preset, (seeds, steps, batch) = sys.argv[2], sys.argv[3], map(int, sys.argv[4:7])
        print(json.dumps(measure(trainer, preset, seeds, steps, batch)))
    else:
        import argparse

        p = argparse.ArgumentParser(description="tokens/s of seeds trained together vs one by one")
        p.add_argument("--seeds", type=int, default=12)
        p.add_argument("--steps", type=int, default=32)
        p.add_argument("--batch", type=int, default=32, help="32: the suite's; small ones show the per-step overhead")
        p.add_argument("--preset", choices=sorted(set(PRESETS + GPU_PRESETS)), action="append",
                       help="default: all of the device's")
        p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
        a = p.parse_args()
        for name in a.preset or (PRESETS if a.device == "cpu" else GPU_PRESETS):
            print(line(compare(name, a.seeds, a.steps, a.batch, a.device)), flush=True)
