"""README's findings table (reports/findings.py, `uplab report --findings`): generated from a
recorded baseline, never typed; the README holds exactly the generated table."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness import cli
from harness.claims import baseline
from harness.errors import UplabError
from harness.stats import Decision
from reports import build, findings
from tests.report_helpers import MIXED, PROVENANCE, family, result, within

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
TINY = ROOT / baseline.DEFAULT_DIR / "tiny.json"


@pytest.fixture
def body() -> dict:
    """The tiny baseline recorded from a report: two primaries (one inconclusive), one exploratory."""
    records = [*family([result("dups_more_responsive"), result("o_proj_less_sensitive", effects=MIXED)]),
               result("dups_more_responsive", "interleaved")]
    return baseline.record(build.assemble(records, PROVENANCE))["tiny"]


def rows(table: str) -> list[list[str]]:
    lines = [line for line in table.splitlines() if line.startswith("| ")]
    return [[cell.strip() for cell in line.strip("|").split(" | ")] for line in lines]


def test_table_rows_from_the_baseline(body):
    table = findings.table(body)
    header, *data = rows(table)
    assert header == list(findings.COLUMNS)
    assert [r[:3] for r in data] == [["`dups_more_responsive`", "contiguous", "primary"],
                                     ["`dups_more_responsive`", "interleaved", "exploratory"],
                                     ["`o_proj_less_sensitive`", "contiguous", "primary"]]
    dups, explor, o_proj = data
    assert dups[3:] == ["superiority", "supported", "+0.263", "≥ +0.183 (97.5 %), ≤ +0.325 (95 %); lower decided",
                        "0.0039 / 1.000", "0.0078 / 1.000", "—", "8 runs (seeds)"]
    assert o_proj[4] == "inconclusive" and o_proj[6].startswith("≥ ") and "≤ " in o_proj[6]
    assert "decided" not in o_proj[6]  # inconclusive: neither bound decided
    assert explor[8] == "—"  # exploratory: no adjusted p
    assert table.splitlines()[0] == ("Scale `tiny`, recorded from commit `000000000000` "
                                     "(2026-01-01T00:00:00+00:00): 2 primary results, Holm-adjusted "
                                     "together; 1 exploratory (unadjusted, deciding nothing).")


def test_equivalence_and_refutations_show_their_reason(body):
    eq = Decision(effect=0.3, ci_low=0.2, ci_high=0.4, p=0.9, p_ref=0.01, n=8, method="m",
                  direction="greater", sesoi=0.1, test="equivalence").to_dict()
    refuted = Decision(effect=-0.3, ci_low=-0.4, ci_high=-0.2, p=1.0, p_ref=0.001, n=8, method="m",
                       direction="greater", sesoi=0.1).to_dict()
    body["results"] = [{"claim": "x", "case": "a", "primary": True, **eq},
                       {"claim": "y", "case": "b", "primary": True, **refuted}]
    _, eq_row, ref_row = rows(findings.table(body))
    assert eq_row[4:7] == ["refuted: a difference of at least the sesoi", "+0.3",
                           "≥ +0.2 (97.5 %), ≤ +0.4 (97.5 %); both decided"]
    assert ref_row[4] == "refuted: opposite direction" and ref_row[6].endswith("upper decided")


def test_not_in_regime_names_the_failing_check_and_the_regime_table_its_numbers(body):
    check = {"name": "target_learned", "op": ">=", "threshold": 0.8, "values": [0.1, 0.9, 0.2],
             "seeds_passing": 1, "passed": False}
    body["results"][0].update(verdict="not in regime", statistical_verdict="supported",
                              regime={"passed": False, "checks": [check]})
    table = findings.table(body)
    assert rows(table)[1][4] == "not in regime: target_learned (1/3 seeds >= 0.8, median 0.2)"
    assert "| `target_learned` | >= 0.8 | 1 / 3 | 0.2 | 0.1 – 0.9 | `dups_more_responsive` |" in table


def test_within_run_result_names_its_units():
    body = baseline.record(build.assemble([within(scale="tiny")], PROVENANCE))["tiny"]
    (_, row) = rows(findings.table(body))
    assert row[10] == "12 source layers of one run trained elsewhere"


def test_baseline_without_direction_reads_it_from_the_registry(body):
    for r in body["results"]:
        del r["direction"]
    o_proj = body["results"][-1]
    assert findings._as_claim(o_proj, None)["decision"].get("direction") is None
    from harness.claims.registry import load as load_registry

    assert findings._as_claim(o_proj, load_registry())["decision"]["direction"] == "less"


def test_cells_are_escaped(body):
    body["results"][0]["case"] = "a|b"
    assert "| a\\|b |" in findings.table(body)


def test_splice_replaces_only_the_marked_block(body):
    readme = "intro\n<!-- findings:tiny -->\nold table\n<!-- /findings:tiny -->\noutro\n"
    new = findings.splice(readme, body)
    assert new.startswith("intro\n<!-- findings:tiny -->\nScale `tiny`") and new.endswith(
        "<!-- /findings:tiny -->\noutro\n")
    assert findings.extract(new, "tiny") == findings.block(body)
    assert findings.splice(new, body) == new  # idempotent
    with pytest.raises(UplabError, match="no findings block for scale 'tiny'"):
        findings.splice("no markers here", body)


def test_cli_prints_and_splices(body, tmp_path, capsys):
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(body))
    assert cli.main(["report", "--findings", str(path)]) == 0
    assert capsys.readouterr().out == findings.block(body) + "\n"
    readme = tmp_path / "README.md"
    readme.write_text("x\n<!-- findings:tiny -->\n<!-- /findings:tiny -->\n")
    assert cli.main(["report", "--findings", str(path), "--readme", str(readme)]) == 0
    assert findings.extract(readme.read_text(), "tiny") == findings.block(body)


@pytest.mark.parametrize("content, message", [
    (None, "does not exist; record one with `uplab report DIR --record`"),
    ("{", "is not valid JSON"),
    ('{"schema": "uplab.baseline/1", "scale": "tiny", "results": [{"claim": 1}]}', "is not a uplab baseline"),
    ('{"schema": "uplab-claims/2", "claims": []}', "is not a uplab baseline"),
], ids=["missing", "truncated", "results", "a claims.json"])
def test_bad_baseline_is_one_line(tmp_path, capsys, content, message):
    path = tmp_path / "tiny.json"
    if content is not None:
        path.write_text(content)
    assert cli.main(["report", "--findings", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err and "Traceback" not in err


def check_readme(readme: Path, path: Path) -> None:
    """AssertionError unless `readme` holds exactly the findings block of the baseline `path`."""
    body = findings.load(path)
    found = findings.extract(readme.read_text(encoding="utf-8"), body["scale"])
    start, end = findings.markers(body["scale"])
    assert found is not None, f"{readme.name} lacks the {start} ... {end} block"
    assert found == findings.block(body), (
        f"{readme.name}'s findings table differs from {path}; regenerate it with "
        f"`uplab report --findings {path} --readme {readme.name}`")


def test_readme_holds_exactly_the_generated_table():
    """README's findings table is the one generated from hypotheses/expected/tiny.json."""
    if not TINY.is_file():
        pytest.skip(f"no recorded baseline {TINY.relative_to(ROOT)} yet: record one with "
                    "`uplab report reports/out --record`, then `uplab report --findings "
                    f"{TINY.relative_to(ROOT)} --readme README.md`")
    check_readme(README, TINY)


def test_readme_check_fails_on_a_stale_or_missing_table(body, tmp_path):
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(body))
    readme = tmp_path / "README.md"
    readme.write_text("# x\n")
    with pytest.raises(AssertionError, match="lacks the <!-- findings:tiny -->"):
        check_readme(readme, path)
    readme.write_text("# x\n" + findings.block(body).replace("0.0078", "0.0077") + "\n")
    with pytest.raises(AssertionError, match="findings table differs"):
        check_readme(readme, path)
    readme.write_text(findings.splice(readme.read_text(), body))
    check_readme(readme, path)


def test_matrix_sets_scales_side_by_side(body, tmp_path, capsys):
    """Several baselines: one row per registered claim, a column per scale, each cell the primary's
    verdict and effect, or why there is none (not registered there, or not run)."""
    from harness.claims.registry import load as load_registry

    real = json.loads(json.dumps(body))
    real["scale"] = "real"
    real["results"] = [r for r in real["results"] if r["claim"] == "o_proj_less_sensitive"]
    full = {**real, "scale": "full"}
    text = findings.matrix([body, real, full])
    table = {r[0]: r[1:] for r in rows(text)}
    assert table["claim"] == ["`tiny`", "`real`", "`full`"]
    assert set(table) - {"claim"} == {f"`{c}`" for c in load_registry().claims}
    tiny_cell, real_cell, _ = table["`o_proj_less_sensitive`"]
    assert tiny_cell.startswith("inconclusive") and real_cell == tiny_cell  # the same result at both
    assert table["`dups_more_responsive`"][1] == "not run"  # registered at real, absent from its baseline
    assert table["`top_down_gradient`"][2] == "not registered at this scale"  # no full form
    assert "exploratory" not in text and "| interleaved" not in text  # primaries only

    paths = []
    for b in (body, real):
        paths.append(tmp_path / f"{b['scale']}.json")
        paths[-1].write_text(json.dumps(b))
    readme = tmp_path / "README.md"
    readme.write_text("x\n<!-- findings:tiny+real -->\n<!-- /findings:tiny+real -->\n")
    assert cli.main(["report", "--findings", *map(str, paths), "--readme", str(readme)]) == 0
    assert findings.extract(readme.read_text(), "tiny+real") == findings.block([body, real])
    with pytest.raises(UplabError, match="one baseline per scale"):
        findings.matrix([body, body])


def test_readme_holds_exactly_the_generated_tiny_vs_real_matrix():
    """README's tiny vs real matrix is the one generated from both recorded baselines."""
    real = ROOT / baseline.DEFAULT_DIR / "real.json"
    if not real.is_file():  # real not yet re-recorded under protocol v2: its v1 baseline, marked so
        real = ROOT / baseline.DEFAULT_DIR / "archive" / "real-protocol1.json"
    if not (TINY.is_file() and real.is_file()):
        pytest.skip("needs both recorded baselines, hypotheses/expected/tiny.json and real.json")
    bodies = [findings.load(TINY), findings.load(real)]
    found = findings.extract(README.read_text(encoding="utf-8"), findings.name(bodies))
    assert found == findings.block(bodies), (
        "README's tiny vs real matrix is stale; regenerate it with `uplab report --findings "
        f"hypotheses/expected/tiny.json {real.relative_to(ROOT)} --readme README.md`")


@pytest.mark.parametrize("scale", ["tiny", "real"])
def test_readme_holds_exactly_the_generated_protocol_comparison(scale):
    """README's "what moved from protocol v1" matrix of a scale is the one generated from the
    archived v1 baseline and the v2 one."""
    old = ROOT / baseline.DEFAULT_DIR / "archive" / f"{scale}-protocol1.json"
    new = ROOT / baseline.DEFAULT_DIR / f"{scale}.json"
    if not (new.is_file() and old.is_file()):
        pytest.skip(f"needs the archived v1 and the recorded v2 {scale} baselines")
    bodies = [findings.load(old), findings.load(new)]
    found = findings.extract(README.read_text(encoding="utf-8"), f"{scale}@v1+{scale}")
    assert found == findings.block(bodies), (
        "README's protocol v1 vs v2 matrix is stale; regenerate it with `uplab report --findings "
        f"{old.relative_to(ROOT)} {new.relative_to(ROOT)} --readme README.md`")


def test_docs_real_holds_exactly_the_generated_real_findings():
    """docs/real.md's v2 findings block (regime per check and per run kind) is the baseline's."""
    real = ROOT / baseline.DEFAULT_DIR / "real.json"
    if not real.is_file():
        pytest.skip("needs the recorded real baseline")
    body = findings.load(real)
    found = findings.extract((ROOT / "docs" / "real.md").read_text(encoding="utf-8"), "real")
    assert found == findings.block(body), (
        "docs/real.md's findings are stale; regenerate them with `uplab report --findings "
        "hypotheses/expected/real.json --readme docs/real.md`")


def test_docs_real_holds_exactly_the_generated_recipe_matrix():
    """docs/real.md's matrix of the two cpu recipes is the two baselines'."""
    paths = [ROOT / baseline.DEFAULT_DIR / f"{stem}.json" for stem in ("real", "real-cpu-finer")]
    if not all(p.is_file() for p in paths):
        pytest.skip("needs both recorded real baselines")
    bodies = [findings.load(p) for p in paths]
    found = findings.extract((ROOT / "docs" / "real.md").read_text(encoding="utf-8"), "real+real-cpu-finer")
    assert found == findings.block(bodies), (
        "docs/real.md's recipe matrix is stale; regenerate it with `uplab report --findings "
        "hypotheses/expected/real.json hypotheses/expected/real-cpu-finer.json --readme docs/real.md`")


def test_one_scale_under_two_protocols_is_a_comparison_with_a_moved_column(body):
    old = json.loads(json.dumps(body))
    old["schema"] = findings.OLD_SCHEMAS[0]
    old["results"][0]["verdict"] = "refuted"
    text = findings.matrix([old, body])
    table = {r[0]: r[1:] for r in rows(text)}
    assert table["claim"] == ["`tiny` (protocol v1: one test, bootstrap bound)", "`tiny`", "moved"]
    assert table["`dups_more_responsive`"][2] == "refuted → supported"
    assert table["`o_proj_less_sensitive`"][2] == "—"
    assert findings.name([old, body]) == "tiny@v1+tiny"


def test_run_kinds_are_tabled_from_the_provenance_through_the_baseline():
    kinds = [{"kind": "contiguous", "seeds": [0, 1], "checks": {
        "target_learned": {"values": [1.0, 0.7], "passing": 1, "median": 0.85, "op": ">=", "threshold": 0.8},
        "copies_refilled": {"values": [0.4, 0.5], "passing": 2, "median": 0.45, "op": ">=", "threshold": 0.3}}}]
    records = [*family([result("dups_more_responsive")])]
    body = baseline.record(build.assemble(records, {**PROVENANCE, "run_kinds": {"tiny": kinds}}))["tiny"]
    assert body["run_kinds"] == kinds
    table = findings.table(body)
    assert ("| contiguous | 1 / 2 (>= 0.8), median 0.85 | — | 2 / 2 (>= 0.3), median 0.45 |") in table
    body["run_kinds"] = {"error": "ValueError: no runs"}
    assert "Run kinds: not summarised (ValueError: no runs)." in findings.table(body)
    body["run_kinds"] = []
    assert "Regime numbers per run kind" not in findings.table(body)


def test_a_real_profile_other_than_cpu_records_and_loads_its_own_baseline(tmp_path):
    """`real` under another profile or recipe is other runs: its baseline is `real-<profile>.json`,
    never written over (or compared with) the cpu profile's `real.json`, and the matrix of the
    two is a comparison with a moved column: does a verdict survive a change of recipe?"""
    records = [*family([result("dups_more_responsive", scale="real"),
                        result("o_proj_less_sensitive", scale="real", effects=MIXED)])]
    prov = {**PROVENANCE, "real_profile": {"name": "cpu-finer"}}
    finer = baseline.record(build.assemble(records, prov))
    assert list(finer) == ["real-cpu-finer"] and finer["real-cpu-finer"]["profile"] == "cpu-finer"
    cpu = baseline.record(build.assemble(records, {**PROVENANCE, "real_profile": {"name": "cpu"}}))
    assert list(cpu) == ["real"]
    paths = baseline.write({**finer, **cpu}, tmp_path)
    assert sorted(p.name for p in paths) == ["real-cpu-finer.json", "real.json"]
    assert baseline.load(tmp_path, "real", "cpu-finer").path.name == "real-cpu-finer.json"
    assert baseline.load(tmp_path, "real", "cpu").path.name == "real.json"
    assert baseline.load(tmp_path, "real", "gpu") is None
    (tmp_path / "real-gpu.json").write_text((tmp_path / "real-cpu-finer.json").read_text())
    with pytest.raises(UplabError, match="profile 'cpu-finer', not 'gpu'"):
        baseline.load(tmp_path, "real", "gpu")
    old = json.loads(json.dumps(cpu["real"]))
    old["results"][0]["verdict"] = "refuted"
    table = {r[0]: r[1:] for r in rows(findings.matrix([old, finer["real-cpu-finer"]]))}
    assert table["claim"] == ["`real`", "`real-cpu-finer`", "moved"]
    assert table["`dups_more_responsive`"][2].startswith("refuted → ")
    assert findings.name([old, finer["real-cpu-finer"]]) == "real+real-cpu-finer"
