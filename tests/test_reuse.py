"""Step-0 scores reused by content (harness.train.reuse): equal to a fresh evaluation, and only
ever reused for the same weights, model, engine and held-out set."""

from __future__ import annotations

import sys

import pytest
import torch

from harness import tiny
from harness.data import ByteTokenizer, DataSpec, load
from harness.runs import Scratch, make
from harness.train import Freeze, Lora, reuse, train
import harness.train.evaluate  # noqa: F401 (the module; harness.train exports a function of that name)
from harness.train.ensemble import train_many

torch.set_num_threads(1)
TOK = ByteTokenizer()


def spec(**kw):
    fields = dict(base=Scratch(seed=0), steps=3, lr=3e-3, snapshots=(0,),
                  data=DataSpec.synthetic("original", size=64, batch_size=16, eval_size=16))
    return make(**{**fields, **kw})


@pytest.fixture
def counted(monkeypatch):
    """Counts the held-out evaluations actually computed (one per eval set and snapshot)."""
    reuse._SCORES.clear()
    calls = []
    evaluate_mod = sys.modules["harness.train.evaluate"]
    real = evaluate_mod.evaluate_many

    def counting(*a, **kw):
        calls.append(1)
        return real(*a, **kw)

    monkeypatch.setattr(evaluate_mod, "evaluate_many", counting)
    monkeypatch.setattr("harness.train.ensemble.evaluate_many", counting)
    return calls


def run(s, model_seed=0):
    model = tiny.build(tiny.PRESETS["tiny8"], model_seed)
    train_set, evals = load(s.data, TOK)
    return train(model, s, train_set, evals, pad_id=TOK.pad_id, progress=False, sink=lambda *a: None)


def test_same_start_is_scored_once_and_equals_a_fresh_score(counted):
    first = run(spec())  # snapshots 0 and 3, two eval sets: 4 evaluations
    assert len(counted) == 4
    again = run(spec(seed=1, mode=Freeze(layers=(1,))))  # same step-0 weights, other data order
    assert len(counted) == 6  # step 0 reused, step 3 scored
    assert again["evals"][0] == first["evals"][0]
    reuse._SCORES.clear()
    fresh = run(spec(seed=1))
    assert fresh["evals"][0]["sets"] == first["evals"][0]["sets"]  # what reuse returned is exact


def test_other_weights_model_or_set_are_scored_again(counted):
    run(spec())
    n = len(counted)
    run(spec(), model_seed=1)  # other weights
    assert len(counted) == n + 4
    run(spec(mode=Lora(r=2, alpha=4)))  # a peft model: another class and state, even with B = 0
    assert len(counted) == n + 8
    run(spec(data=DataSpec.synthetic("original", size=64, batch_size=16, eval_size=8)))  # other set
    assert len(counted) == n + 12


def test_stacked_seeds_reuse_a_stack_scored_before(counted):
    specs = [spec(seed=s, steps=2) for s in (0, 1)]
    train_set, evals = load(specs[0].data, TOK)

    def stacked(mode=None):
        ss = [s.model_copy(update={"mode": mode}) if mode else s for s in specs]
        models = [tiny.build(tiny.PRESETS["tiny8"], i) for i in (0, 1)]
        return train_many(models, ss, train_set, evals, pad_id=TOK.pad_id,
                          sinks=[lambda *a: None] * 2, progress=False)

    a = stacked()
    assert len(counted) == 4
    b = stacked(Freeze(layers=(0,)))
    assert len(counted) == 6
    assert [m["evals"][0] for m in a] == [m["evals"][0] for m in b]


def test_function_key_sees_every_byte_name_and_part():
    state = {"w": torch.zeros(3), "b": torch.ones(2)}
    key = reuse.function_key([state], "A")
    assert key == reuse.function_key([{k: v.clone() for k, v in state.items()}], "A")
    bumped = {"w": torch.tensor([0.0, 0.0, 1e-30]), "b": torch.ones(2)}
    assert reuse.function_key([bumped], "A") != key
    assert reuse.function_key([{"v": state["w"], "b": state["b"]}], "A") != key
    assert reuse.function_key([state], "B") != key
    assert reuse.function_key([{"w": torch.zeros(3, dtype=torch.float64), "b": torch.ones(2)}], "A") != key
