"""Run kinds (harness.claims.kinds): the label of a run against the scale's default fine-tune,
and the per-kind regime numbers the README shows beside the findings (issue 26)."""

from __future__ import annotations

import pytest

from harness import strategies
from harness.claims import kinds
from harness.claims.lab import Lab
from harness.claims.registry import load
from harness.claims.settings import plan_for, tiny_setting
from harness.data import DataSpec
from harness.runs import finetune, get_or_run, tiny_base
from harness.train.modes import Lora


def _default(seed=0, plan=None):
    return finetune(tiny_base(seed), plan=plan, seed=seed, **tiny_setting().finetune)


@pytest.mark.parametrize("overrides, want", [
    ({}, "contiguous"),
    ({"lr": 2e-2}, "contiguous · lr 0.02"),
    ({"optimizer": "sgd", "lr": 1.22e-1}, "contiguous · SGD lr 0.122"),
    ({"mode": Lora(r=8)}, "contiguous · LoRA r8"),
    ({"data": DataSpec.synthetic("conflict", size=2048)}, "contiguous · conflict target"),
    ({"track": ("*.o_proj.weight",), "snapshots": (0, 1, 2)}, "contiguous · dense snapshots"),
    ({"epochs": 3}, "contiguous · 3 epochs"),
])
def test_a_kind_is_named_by_how_it_differs_from_the_default(overrides, want):
    plan = plan_for("contiguous", 16)
    spec = finetune(tiny_base(0), plan=plan, seed=0, **{**tiny_setting().finetune, **overrides})
    assert kinds.label(spec, _default(0, plan), 16) == want


def test_layouts_and_deep_bases_are_named():
    assert kinds.label(_default(), _default(), 16) == "normal"
    for strategy in ("interleaved", "single", "block"):
        plan = plan_for(strategy, 16)
        assert kinds.label(_default(0, plan), _default(0, plan), 16) == strategy
    five = strategies.contiguous(6, 7, num_layers=16, copies=5)
    assert kinds.label(_default(0, five), _default(0, five), 16) == "plan (21 layers)"
    deep = finetune(tiny_base(0, preset="tiny@28"), seed=0, **tiny_setting().finetune)
    assert kinds.label(deep, _default(), 16) == "normal · base of 28 layers"


def test_each_kind_gets_its_seeds_values_and_passing_counts(tmp_path):
    small = dict(steps=3, snapshots=(0,))
    base = dict(steps=20, data=DataSpec.synthetic("original", size=20 * 32))
    plan = plan_for("contiguous", tiny_setting().depth)
    lab = Lab(tmp_path, tiny_setting())
    runs = [get_or_run(finetune(tiny_base(s, **base), plan=p, seed=s, **small, **extra), tmp_path)
            for s in (0, 1) for p, extra in ((None, {}), (plan, {}), (None, {"lr": 1e-2}))]
    rows = kinds.summarize([r.key for r in runs] + [runs[0].spec.base.key, "missing"], tmp_path,
                           lab, load().regime_checks)
    by = {r["kind"]: r for r in rows}
    assert set(by) == {"normal · 3 steps · other snapshots", "contiguous · 3 steps · other snapshots",
                       "normal · lr 0.01 · 3 steps · other snapshots"}
    for row in rows:
        assert row["seeds"] == [0, 1]
        t = row["checks"]["target_learned"]
        assert t["op"] == ">=" and t["threshold"] == 0.8 and len(t["values"]) == 2
        assert t["passing"] == sum(v >= 0.8 for v in t["values"]) and all(0 <= v <= 1 for v in t["values"])
        assert ("copies_refilled" in row["checks"]) == row["kind"].startswith("contiguous")
    fill = by["contiguous · 3 steps · other snapshots"]["checks"]["copies_refilled"]
    # 3 AdamW steps at 6e-3 refill a 20-step base's small copies to ~0.34-0.37 of their source
    assert all(0 < v < 1 for v in fill["values"]) and fill["passing"] == sum(v >= 0.3 for v in fill["values"])
