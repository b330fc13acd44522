"""The claim registry is the protocol: complete, well-formed, and not edited silently after results."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.claims import baseline
from harness.claims.registry import REGISTRY, load, parse
from harness.errors import UplabError

ROOT = Path(__file__).resolve().parents[1]
BASELINES = sorted((ROOT / "hypotheses" / "expected").glob("*.json"))


def test_every_seed_question_has_one_primary_with_a_positive_sesoi():
    reg = load()
    assert len(reg.claims) == 21
    for entry in reg.claims.values():
        p = entry.primary
        assert p.primary and p.sesoi > 0 and len(p.sesoi_why) > 20, entry.id
        assert p.test in ("superiority", "non-inferiority", "equivalence")
        assert [c.case for c in entry.cases if c.primary] == [p.case]
        assert all(not c.primary for c in entry.cases[1:])
        assert "tiny" in entry.scales, f"{entry.id}: every claim runs at the default scale"


def test_the_card_statements_that_are_not_differences_are_tested_as_such():
    reg = load()
    assert reg.entry("dup_rate_not_slowing").primary.test == "non-inferiority"  # "remained the same"
    assert reg.entry("freezing_replicates_effect").primary.test == "equivalence"  # "replicate"


def test_every_claim_has_a_measure_and_a_hypothesis_module():
    from harness.claims.measures import MEASURES

    reg = load()
    assert not set(reg.claims) - set(MEASURES)  # (a pytester run in this process may register toy measures too)
    for entry in reg.claims.values():
        module = ROOT / "hypotheses" / f"test_{entry.module}.py"
        text = module.read_text()
        assert f'claim_params("{entry.id}")' in text and f'claim.decide("{entry.id}", case)' in text
        assert "assert result.holds, result.message" in text, f"{module.name} must assert its result"


def test_secondary_cases_inherit_and_override_the_primary():
    entry = load().entry("top_down_gradient")
    rank = entry.case("rank")
    assert (rank.direction, rank.sesoi, rank.unit) == ("greater", 0.2, "rank correlation")
    assert entry.case("descent-slope").direction == entry.primary.direction == "less"
    with pytest.raises(UplabError, match="no case 'nope'; registered: descent, descent-slope, rank"):
        entry.case("nope")


@pytest.mark.parametrize("edit, message", [
    (lambda t: t.replace("sesoi: 0.1\n", "sesoi: 0\n", 1), "sesoi: Input should be greater than 0"),
    (lambda t: t.replace("test: superiority", "test: vibes", 1), "primary.test"),
    (lambda t: t.replace("    scales: [tiny, small, full, real]\n", "    scales: []\n", 1), "a claim runs at one scale"),
    (lambda t: t + "  broken: [", "not valid YAML"),
    (lambda t: t.replace("sesoi: 0.1\n", "sesoi: .inf\n", 1), "sesoi: Input should be a finite number"),
    (lambda t: t + "  listed: [1, 2]\n", "claims.listed: expected a mapping of fields, got list"),
    # issue 25: a one-run form is registered with its metric and unit, never as a bare flag
    (lambda t: t.replace("    within:\n      metric:", "    within: true\n    within_old:\n      metric:", 1),
     "describe the one-run form: within: {metric, unit, needs?}"),
    (lambda t: t.replace("      unit: \"duplicated source layer (copies", "      unitx: \"duplicated source layer (copies", 1),
     "within.unit: Field required"),
])
def test_a_malformed_registry_is_one_line_naming_the_field(edit, message):
    with pytest.raises(UplabError) as info:
        parse(edit(REGISTRY.read_text()), "registry.yaml")
    assert message in str(info.value) and "\n" not in str(info.value)


def test_every_weight_delta_claim_at_full_has_a_registered_one_run_form():
    """Issue 25: what a manifest decides is registered before any result, with its unit."""
    from harness.claims.registry import load

    forms = {cid: e.within for cid, e in load().claims.items() if e.within}
    assert {"first_layers_outliers", "upscale_perturbs_profile", "dups_saturate",
            "slices_self_connected"} <= set(forms)
    assert len(forms) == 9
    for cid, form in forms.items():
        assert "full" in load().entry(cid).scales, cid  # a manifest runs at `full`
        assert "test" in form.metric and form.unit, cid


def test_the_protocol_hash_covers_the_primary_only():
    reg = load()
    text = REGISTRY.read_text()
    changed = parse(text.replace("sesoi: 0.1\n", "sesoi: 0.2\n", 1))
    first = next(iter(reg.claims))
    assert changed.entry(first).protocol_hash != reg.entry(first).protocol_hash
    notes_only = parse(text.replace('"an argument', '"another argument'))
    assert all(notes_only.entry(c).protocol_hash == reg.entry(c).protocol_hash for c in reg.claims)


@pytest.mark.parametrize("path", BASELINES, ids=[p.stem for p in BASELINES])
def test_no_primary_changed_after_its_results_without_a_dated_deviation(path):
    """A baseline holds results; a primary edited since (hash differs) needs a newer deviation."""
    body = json.loads(path.read_text())
    recorded = (body.get("recorded_at") or "")[:10]
    reg = load()
    for claim_id, old_hash in body["protocol"].items():
        entry = reg.entry(claim_id)
        if entry.protocol_hash == old_hash:
            continue
        newer = [d for d in (*entry.deviations, *reg.deviations) if d.date >= recorded]
        assert newer, (f"{claim_id}: its primary protocol changed after results were recorded in "
                       f"{path.name} ({recorded}); add a dated deviation (old -> new, why) to the "
                       "registry entry, then re-record the baseline")


def test_a_baseline_round_trips_and_flags_a_moved_effect(tmp_path):
    doc = {"provenance": {"git_commit": "abc123", "started_at": "2026-11-29T21:00:00Z",
                          "packages": {"torch": "2.13.0"}},
           "claims": [{"id": "dups_more_responsive", "scale": "tiny", "case": "contiguous",
                       "primary": True, "seeds": [0, 1], "runs": ["r1"],
                       "decision": {"verdict": "supported", "effect": 0.2, "ci_low": 0.15,
                                    "ci_high": 0.25, "p": 0.001, "p_adj": 0.02, "n": 12}}]}
    (path,) = baseline.write(baseline.record(doc), tmp_path)
    loaded = baseline.load(tmp_path, "tiny")
    assert loaded.commit == "abc123" and loaded.protocol["dups_more_responsive"] == load().entry(
        "dups_more_responsive").protocol_hash
    assert loaded.compare("dups_more_responsive", "contiguous", {"effect": 0.21})["moved"] is False
    assert loaded.compare("dups_more_responsive", "contiguous", {"effect": 0.4})["moved"] is True
    assert loaded.compare("dups_more_responsive", "single", {"effect": 0.4}) is None
    assert baseline.load(tmp_path, "small") is None
    path.write_text("{}")
    with pytest.raises(UplabError, match="not a uplab baseline"):
        baseline.load(tmp_path, "tiny")
