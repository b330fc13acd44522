"""What a verdict becomes in pytest (fixtures/claim.py): the four verdicts, "not in regime", and
regime checks measured per seed (harness/claims/regime.py) on a stand-in lab."""

from __future__ import annotations

import pytest

from fixtures.claim import in_regime, outcome_of
from harness.claims import NotApplicable
from harness.claims.regime import CheckResult, Regime, measure_check
from harness.claims.registry import load
from harness.stats import decide


@pytest.mark.parametrize("verdict, primary, recorded, outcome", [
    ("supported", True, None, "passed"),
    ("refuted", True, None, "failed"),
    ("refuted", True, "refuted", "xfailed"),
    ("inconclusive", True, None, "xfailed"),
    ("smaller", True, None, "xfailed"),
    ("smaller", True, "supported", "failed"),
    ("not in regime", True, None, "skipped"),
    ("not in regime", False, None, "skipped"),
    ("not in regime", True, "not in regime", "skipped"),
    ("supported", True, "not in regime", "failed"),
    ("refuted", False, None, "passed"),
])
def test_each_verdict_has_its_outcome(verdict, primary, recorded, outcome):
    assert outcome_of(verdict, primary=primary, recorded=recorded)[0] == outcome


def _check(values, threshold=0.8, op=">="):
    return CheckResult("target_learned", "exact match", op, threshold, "why", tuple(range(len(values))),
                       tuple(values))


def test_a_failing_check_on_one_seed_takes_the_claim_out_of_regime():
    d = decide([0.5, 0.6, 0.7, 0.4, 0.55, 0.65, 0.5, 0.6], direction="greater", sesoi=0.1).to_dict()
    ok = Regime((_check([0.9, 0.85, 0.95]),))
    assert ok.passed and in_regime(d, ok) is d
    bad = Regime((_check([0.9, 0.79, 0.95]),))
    out = in_regime(d, bad)
    assert not bad.passed and out["verdict"] == "not in regime" and out["statistical_verdict"] == "supported"
    assert "target_learned (exact match >= 0.8): 2/3 seeds pass [0.9, 0.79, 0.95]" in out["reason"]
    assert _check([0.2, 0.3], threshold=0.3, op="<=").passes == (True, True)


def test_an_unmeasurable_check_does_not_block_but_says_so():
    unmeasured = CheckResult("original_kept", "m", ">=", 0.9, "why", (0, 1), (None, None), "no data")
    assert unmeasured.passed is None and Regime((unmeasured,)).passed
    assert unmeasured.to_dict()["seeds_passing"] == 0


class _Lab:
    """A stand-in lab whose default fine-tunes have given held-out scores."""

    def __init__(self, acc, *, original=True):
        self.acc, self.original = acc, original

    def needs(self, domain):
        if domain == "original" and not self.original:
            raise NotApplicable("no original domain here")

    def _run(self, seed):
        acc = self.acc[seed]

        class Run:
            key = f"run-{seed}"

            def scores(self, step=None):
                return {"target": {"loss": 1.0 if step == 0 else 0.5, "acc": acc},
                        "original": {"loss": 1.0, "acc": acc}}
        return Run()

    def normal(self, seed, **kw):
        return self._run(seed)

    def upscaled(self, seed, strategy, **kw):
        return self._run(seed)


def test_checks_are_measured_per_seed_against_the_registered_threshold():
    spec = load().regime_checks["target_learned"]
    result = measure_check(_Lab({0: 0.95, 1: 0.5}), "target_learned", spec, [0, 1])
    assert result.values == (0.95, 0.5) and result.threshold == spec.at_least == 0.8
    assert result.passes == (True, False) and result.passed is False
    text = measure_check(_Lab({0: None, 1: None}), "target_learned", spec, [0, 1])
    assert text.metric == spec.text.metric and text.values == (0.5, 0.5)  # loss drop / step-0 loss
    kept = measure_check(_Lab({0: 0.9}, original=False), "original_kept",
                         load().regime_checks["original_kept"], [0])
    assert kept.passed is None and "no original domain" in kept.not_measured


class _BaseLab:
    """A stand-in lab whose base is a given in-memory tiny model (10 layers: mapped range [3, 7))."""

    def __init__(self, model):
        from harness.claims.settings import tiny_setting
        from harness.runs import tiny_base

        self.setting, self.model, self.spec = tiny_setting(), model, tiny_base(0)

    def needs(self, domain):
        pass

    def base(self, seed):
        lab = self

        class Run:
            spec = lab.spec

            def model(self, step=None):
                return lab.model
        return Run()


def test_depth_needed_is_the_median_skip_cost_inside_the_mapped_range():
    import statistics

    import torch

    from harness import tiny
    from harness.claims.function import heldout, loss, skip_rise
    from harness.claims.settings import seed_layout_range

    spec = load().regime_checks["depth_needed"]
    model = tiny.build(tiny.preset("tiny"), 0)
    with torch.no_grad():  # a model whose layers all do visible work
        for p in model.parameters():
            p.mul_(8)
    lab = _BaseLab(model)
    data = heldout(lab.base(0), "original")
    before = loss(model, data)
    mapped = range(*seed_layout_range(model.config.num_hidden_layers))
    want = statistics.median(skip_rise(model, data, [i], before) for i in mapped)
    got = measure_check(lab, "depth_needed", spec, [0])
    assert got.values == (pytest.approx(want),) and got.threshold == 0.1 and want != 0
    # layers of the mapped range that only pass their input on (o_proj, down_proj zero) cost 0
    with torch.no_grad():
        for i in mapped:
            model.model.layers[i].self_attn.o_proj.weight.zero_()
            model.model.layers[i].mlp.down_proj.weight.zero_()
    idle = measure_check(_BaseLab(model), "depth_needed", spec, [0])
    assert idle.values[0] == pytest.approx(0, abs=1e-9) and idle.passed is False


class _GatedLab(_Lab):
    regime_first = True  # as at `real` (Setting.regime_first)


def test_a_lab_that_checks_the_regime_first_never_measures_a_claim_out_of_regime(monkeypatch, tmp_path):
    """At `real` a claim's own runs cost CPU-hours: with regime checks failing on the default
    pair, the claim is recorded "not in regime" with the failing numbers, its measure is never
    called, and the Holm family counts it as p = 1 (never rejected); in regime, it is measured as usual."""
    from fixtures.claim import Claim
    from harness.claims import measures
    from harness.claims.family import Family

    def measured(*a, **k):
        raise AssertionError("measured a claim whose regime failed")

    monkeypatch.setattr(measures, "measure_once", measured)
    registry = load()
    case = registry.entry("upscale_room").primary.case
    lab, records = _GatedLab({0: 0.95, 1: 0.5}), []
    family = Family(scale="tiny", lab=lab, seeds=[0, 1], alpha=0.05, store=tmp_path, registry=registry)
    claim = Claim(nodeid="t", scale="tiny", alpha=0.05, seeds=[0, 1], lab=lab, family=lambda: family,
                  baseline=None, sink=records.append, registry=registry)
    with pytest.raises(pytest.skip.Exception, match="target_learned .* 1/2 seeds pass"):
        claim.decide("upscale_room", case)
    (record,) = records
    assert record.verdict == "not in regime" and record.decision["n"] == 0 and record.effects is None
    assert record.regime["passed"] is False and "not measured" in record.decision["reason"]
    assert record.family["size"] == len(registry.primaries("tiny"))  # its family column, as measured ones
    assert family._compute("upscale_room")["status"] == "untested"  # p = 1 in Holm, the family keeps its size
    in_regime_lab = _GatedLab({0: 0.95, 1: 0.95})
    with pytest.raises(AssertionError, match="measured a claim"):
        Claim(nodeid="t", scale="tiny", alpha=0.05, seeds=[0, 1], lab=in_regime_lab, family=lambda: family,
              baseline=None, sink=records.append, registry=registry).decide("upscale_room", case)


def test_an_unmeasured_claim_renders_records_and_reads_back(monkeypatch, tmp_path):
    """The record of a claim left unmeasured (no effects, no seeds of its own) goes through the
    HTML report, a recorded baseline and the README's findings tables, naming the failing check."""
    from fixtures.claim import Claim
    from harness.claims import baseline, measures
    from reports import findings
    from reports.build import assemble, write_report

    monkeypatch.setattr(measures, "measure_once", lambda *a, **k: None)
    registry, records = load(), []
    case = registry.entry("upscale_room").primary.case
    claim = Claim(nodeid="t", scale="tiny", alpha=0.05, seeds=[0, 1], lab=_GatedLab({0: 0.95, 1: 0.5}),
                  family=lambda: None, baseline=None, sink=records.append, registry=registry)
    with pytest.raises(pytest.skip.Exception):
        claim.decide("upscale_room", case)
    index = write_report(records, tmp_path / "report", {"started_at": "2026-12-03T00:00:00+00:00"})
    assert "target_learned" in index.read_text(encoding="utf-8")
    body = baseline.record(assemble(records, {"started_at": "2026-12-03T00:00:00+00:00"}), registry=registry)["tiny"]
    baseline.write({"tiny": body}, tmp_path / "expected")
    loaded = baseline.load(tmp_path / "expected", "tiny")
    assert loaded.get("upscale_room", case)["verdict"] == "not in regime"
    assert body["seeds"] == [0, 1] and records[0].runs == ["run-0", "run-0", "run-1", "run-1"]
    text = findings.table(findings.load(tmp_path / "expected" / "tiny.json"), registry=registry)
    assert "not in regime" in text and "target_learned" in text


def test_a_changed_verdict_names_other_kernels_when_the_baseline_was_computed_elsewhere(tmp_path):
    """A baseline records what computed it; a run on other CPU kernels says so beside a changed
    verdict (the first v2 tiny baseline moved 16 verdicts on an AVX-512 machine), and a run on
    the same kernels with another core count does not."""
    import json

    from fixtures.claim import other_devices
    from harness.claims import baseline
    from reports.provenance import describe_device

    here = describe_device()
    assert "kernels AVX2, MKL_CBWR=AVX2" in here  # the pinned test process
    elsewhere = "cpu: x86_64, 2 cores, kernels AVX512"
    note = other_devices([elsewhere])
    assert note and elsewhere in note and here in note
    assert other_devices([f"cpu: x86_64, 64 cores, kernels {here.split('kernels ', 1)[1]}"]) is None
    assert other_devices([]) is None and other_devices(None) is None  # older baselines recorded none
    doc = {"provenance": {"devices": [elsewhere], "git_commit": "abc"},
           "claims": [{"id": "dups_more_responsive", "scale": "tiny", "case": "contiguous",
                       "decision": {"verdict": "supported", "effect": 0.2, "ci_low": 0.1, "ci_high": 0.3}}]}
    body = baseline.record(doc)["tiny"]
    assert body["devices"] == [elsewhere]
    (tmp_path / "tiny.json").write_text(json.dumps(body))
    loaded = baseline.load(tmp_path, "tiny")
    assert loaded.compare("dups_more_responsive", "contiguous", {"effect": 0.2})["devices"] == [elsewhere]
