"""The measures (harness.claims.measures): one per registered claim, measuring exactly the
registered cases, and returning one finite effect per seed on real (very short) runs."""

from __future__ import annotations

import math
import sys
from dataclasses import replace

import pytest

from harness import arch
from harness.claims.lab import Lab
from harness.claims.settings import tiny_setting
from harness.claims.measured import Measured
from harness.claims.measures import MEASURES
from harness.claims.registry import load
from harness.runs import tiny_base

REGISTRY = load()


def test_every_registered_claim_has_its_measure_in_its_module():
    assert set(MEASURES) == set(REGISTRY.claims)
    for claim_id, entry in REGISTRY.claims.items():
        module = sys.modules[MEASURES[claim_id].__module__]
        assert module.__name__ == f"harness.claims.measures.{entry.module}", claim_id
        # the measure knows exactly the registered cases, primary first
        assert module.CASES == tuple(c.case for c in entry.cases), claim_id


@pytest.mark.parametrize("claim_id", sorted(REGISTRY.claims))
def test_an_unknown_case_names_the_valid_ones_before_any_run(claim_id):
    cases = ", ".join(c.case for c in REGISTRY.entry(claim_id).cases)
    with pytest.raises(ValueError, match=f"{claim_id} has no case 'nope'; its cases are {cases}$"):
        MEASURES[claim_id](object(), [0, 1], "nope")  # not a lab: the case is checked first


# Measures that need only the base, the plain fine-tune and the contiguous upscale of each seed,
# with the units of the within-run form where the claim has one: "roles" (one dup unit per
# duplicated source layer, one orig unit per orig layer), "dups" (the dup units alone, or one
# paired unit per duplicated source layer: dups_more_responsive's depth-matched contrast),
# "modules" (one per module: the contiguous layout's slices all copy the same source range),
# "dups-matched" (one per duplicated source with a copy that has within- and across-slice pairs
# at a shared distance: at most the dup units).
CHEAP = {("dups_more_responsive", "contiguous"): "dups", ("dups_more_responsive", "contiguous-all-layers"): "roles",
         ("upscale_room", "contiguous"): None, ("upscale_retains_more", "contiguous-same-steps"): None,
         ("merge_back_first_layers", "normal-uncontrolled"): None,
         ("top_down_gradient", "descent"): None, ("top_down_gradient", "descent-slope"): None,
         ("top_down_gradient", "rank"): None, ("o_proj_less_sensitive", "contiguous"): "dups",
         ("first_layers_outliers", "normal"): None, ("slice_own_gradient", "within"): "modules",
         ("slice_own_gradient", "break"): None, ("upscale_perturbs_profile", "contiguous"): None,
         ("post_norm_moves_in_dups", "contiguous"): "dups", ("upscale_retains_more", "contiguous"): None,
         ("anchor_holds_slice", "contiguous"): None, ("slices_self_connected", "contiguous"): "dups-matched",
         }


@pytest.fixture(scope="module")
def short_lab(tmp_path_factory):
    """The tiny lab with 8-step pre-training and 8-step fine-tunes (snapshots 0, 2, 4, 8)."""
    setting = replace(tiny_setting(), base_of=lambda seed: tiny_base(seed, steps=8),
                      finetune={"steps": 8, "snapshots": (0, 2, 4, 8)})
    return Lab(tmp_path_factory.mktemp("runs"), setting)


def units(lab: Lab, kind: str) -> int:
    """The within-run n a claim should have on the contiguous layout, counted from the layer map."""
    lm = lab.layer_map("contiguous")
    dup_sources = {lm.source_of(i) for i in lm.indices("dup")}
    assert len(dup_sources) < len(lm.indices("dup"))  # the layout has copies to average
    return {"roles": len(dup_sources) + len(lm.indices("orig")), "dups": len(dup_sources),
            "modules": len(arch.get(lab.setting.model_type).modules)}[kind]


@pytest.mark.parametrize("claim_id, case", list(CHEAP), ids=[f"{c}-{k}" for c, k in CHEAP])
def test_measures_give_one_finite_effect_per_seed(short_lab, claim_id, case):
    m = MEASURES[claim_id](short_lab, [0, 1], case)
    assert isinstance(m, Measured) and m.seeds == (0, 1)
    assert len(m.effects) == 2 and all(math.isfinite(e) for e in m.effects), m.effects
    assert m.runs and all((short_lab.cache / key).is_dir() for key in m.runs)
    for name, values in m.notes.items():
        assert len(values) == 2, name
    kind = CHEAP[(claim_id, case)]
    if kind is None:
        assert m.within is None
    else:
        assert REGISTRY.entry(claim_id).within
        if kind == "dups-matched":
            assert 1 <= m.within.n <= units(short_lab, "dups")
        else:
            assert m.within.n == units(short_lab, kind)  # copies of one source layer counted once
        assert all(math.isfinite(v) for g in m.within.groups for v in g)


def test_plots_are_made_only_when_asked(short_lab):
    import matplotlib.figure

    m = MEASURES["top_down_gradient"](short_lab, [0, 1], "descent")
    figures = m.plots()
    assert figures and all(isinstance(f, matplotlib.figure.Figure) for f in figures.values())


def test_merge_back_leaves_out_seeds_whose_exchange_rate_is_undefined(monkeypatch):
    """Issue 21: no floor. A seed whose pair-0-1 reset cost no target loss has no exchange rate:
    it is left out of the primary and counted; fewer than two seeds left is an error."""
    from harness.claims.measures import merge_back

    ok = {(0, 1): (-1.0, 0.5), (2, 3): (-0.2, 0.4), (3, 4): (-0.1, 0.0)}  # (3, 4): undefined control
    free = {(0, 1): (-1.0, 0.0), (2, 3): (-0.2, 0.4)}  # pair 0-1 cost nothing
    changes = {0: ok, 1: free, 2: ok}

    class Run:
        def __init__(self, seed):
            self.seed, self.key = seed, f"run{seed}"

    class FakeLab:
        def needs(self, domain):
            pass

        def normal(self, seed):
            return Run(seed)

    monkeypatch.setattr(merge_back, "pair_changes", lambda run: changes[run.seed])
    m = merge_back.merge_back_first_layers(FakeLab(), [0, 1, 2], "normal")
    assert m.seeds == (0, 2) and m.effects == pytest.approx([-2.0 - (-0.5), -1.5])
    assert m.notes["seeds left out (exchange rate undefined)"] == [1, 1]
    assert len(m.runs) == 3  # every run read is named, the left-out one too
    with pytest.raises(ValueError, match="undefined on 2 of 3 seeds"):
        changes[2] = free
        merge_back.merge_back_first_layers(FakeLab(), [0, 1, 2], "normal")
