"""The tiny defaults do what the claims need: a base learns the original domain, the default
fine-tune learns the target domain while keeping the original, and a fine-tune without replay
erodes the original (forgetting), on the additive target and on the conflicting one.

Runs the real defaults (tiny_base / finetune, seed 0) of the 10-layer tiny world (tasks.VERSION 6,
docs/tiny-world.md): pre-training (1200 steps) takes about 2/3 of the 16-layer world's ~35 s of
CPU, plus a few seconds per fine-tune, on one thread. The default fine-tune is the card's regime
since issue 26 (learns the target, keeps the original); without its replayed share it forgets.
Measured before issue 26 (seeds 0, 1 and 2, one epoch at lr 3e-4; the script is in
docs/tiny-world.md): base original loss
< 0.0001, exact match 1.00 (chance: loss ln 12 = 2.48 per letter); default fine-tune target
loss 14.2 -> 5.3, 13.4 -> 4.3, 12.4 -> 3.5, original loss rises by 3.5, 3.6, 1.1; conflict
fine-tune target loss 31.8 -> 10.2, 22.4 -> 5.6, 28.4 -> 15.6 (seed 2 would miss the halving
asserted below for seed 0), original loss rises by 9.7, 2.4, 6.8. Needs the pre-training
length of the tiny world (TINY_PRETRAIN steps=1200, lr=3e-3, data_size=1200 * 32 in
harness/runs/spec.py).
"""

import math
import time

import pytest
import torch

from harness.data import DataSpec, TokenSet
from harness.runs import finetune, get_or_run, tiny_base
from harness.train import evaluate

torch.set_num_threads(1)
CHANCE_LOSS = math.log(12)  # a uniform guess over the 12-letter alphabet


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("uplab-cache")


@pytest.fixture(scope="module")
def runs(cache):
    t0 = time.perf_counter()
    base = get_or_run(tiny_base(0), cache)
    t1 = time.perf_counter()
    tuned = get_or_run(finetune(tiny_base(0)), cache)
    t2 = time.perf_counter()
    print(f"\ntiny defaults: pretrain {t1 - t0:.1f} s, fine-tune {t2 - t1:.1f} s "
          f"({tuned.metrics['steps_per_s']:.1f} steps/s)")
    return base, tuned


def test_base_learns_the_original_domain(runs):
    base, _ = runs
    first, last = base.metrics["evals"][0]["sets"]["original"], base.scores()["original"]
    assert last["loss"] < 0.2 * CHANCE_LOSS, f"base original loss {last['loss']:.3f}"
    assert last["acc"] > 0.9, f"base original exact match {last['acc']:.2f}"
    assert first["acc"] == 0.0 and last["loss"] < first["loss"]


def test_finetune_learns_target_and_keeps_original(runs):
    """The card's regime (issue 26): the default fine-tune (two epochs, half of its set replayed
    from pre-training, lr 6e-3 after a 40-step warm-up) learns the target and keeps the original, at the registry's
    regime thresholds (exact match >= 0.8 and >= 0.9)."""
    _, tuned = runs
    before, after = tuned.scores(0), tuned.scores()
    assert before["target"]["acc"] < 0.1 and after["target"]["acc"] >= 0.8, (before["target"], after["target"])
    assert after["original"]["acc"] >= 0.9, (before["original"], after["original"])
    assert tuned.spec.data.train.replay == 0.5 and tuned.metrics["total_steps"] == 128
    assert round(tuned.spec.warmup * 128) == 40


def test_finetune_without_replay_forgets_original(runs, cache):
    """What the replay is for: the same fine-tune on the target alone erodes the original."""
    _, tuned = runs
    alone = get_or_run(finetune(tiny_base(0), data=DataSpec.synthetic("target", size=tuned.spec.data.train.size)), cache)
    before, after = alone.scores(0), alone.scores()
    assert after["original"]["loss"] > before["original"]["loss"] + 0.3, (before["original"], after["original"])
    assert after["original"]["acc"] < before["original"]["acc"] - 0.2


def test_conflict_finetune_learns_it_and_forgets_original(runs, cache):
    _, tuned = runs
    size = tuned.spec.data.train.size  # the default fine-tune's length, on the other target
    conflict = get_or_run(finetune(tiny_base(0), data=DataSpec.synthetic("conflict", size=size)), cache)
    assert conflict.spec.data.evals["target"].domain == "conflict"
    before, after = conflict.scores(0), conflict.scores()
    assert after["target"]["loss"] < 0.5 * before["target"]["loss"], (before["target"], after["target"])
    assert after["original"]["loss"] > before["original"]["loss"] + 0.3, (before["original"], after["original"])


def test_exact_match_is_greedy_decoding(runs):
    """Teacher-forced exact match == every scored token is the argmax given the gold prefix."""
    base, _ = runs
    model = base.model()
    from harness.data import ByteTokenizer, DataSpec, load

    _, evals = load(DataSpec.synthetic("original", size=64), ByteTokenizer())
    ts = evals["original"]
    sub = TokenSet("sub", ts.seqs[:24], ts.masks[:24], True)
    hits = 0
    with torch.no_grad():
        for seq, mask in zip(sub.seqs, sub.masks):
            ok = True
            for t in range(1, len(seq)):
                if mask[t]:
                    ok &= int(model(input_ids=torch.tensor([seq[:t]])).logits[0, -1].argmax()) == seq[t]
            hits += ok
    assert evaluate(model, sub, pad_id=258)["acc"] == hits / len(sub.seqs)
