"""The claim report (reports/): claims.json + self-contained index.html for a pre-registered
protocol (primary results decided by Holm per scale, exploratory ones apart), atomic writes,
`uplab report DIR` rebuilding the page, `--record` writing baselines, and bad input in one line."""

from __future__ import annotations

import base64
import html as htmllib
import json
import os
import re
from pathlib import Path

import pytest

from harness import cli
from harness.errors import UplabError
from harness.plots import PNG_MAGIC, effects_strip, png_bytes
from harness.stats import Decision, decide
from reports import build, provenance, view
from reports.records import ClaimRecord
from reports.view import text_table
from tests.report_helpers import MIXED, POSITIVE, PROVENANCE, REGISTRY, family, result, within

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[1]
NEGATIVE = tuple(-e for e in POSITIVE)


@pytest.fixture
def records() -> list[ClaimRecord]:
    return [
        *family([result("dups_more_responsive", plots=True),
                 result("o_proj_less_sensitive", effects=MIXED, plots=True,
                        detectable={"mde": 0.31, "power_at_sesoi": 0.22, "sd": 0.25, "n": 8,
                                    "alpha": 0.025, "target_power": 0.8, "unit": "log ratio"})]),
        result("dups_more_responsive", "interleaved", scale="tiny", plots=True),
    ]


@pytest.fixture
def report(tmp_path, records) -> Path:
    build.write_report(records, tmp_path / "out", PROVENANCE)
    return tmp_path / "out"


def html_text(page: str) -> str:
    """The page's visible text, tags and images removed, whitespace collapsed."""
    page = re.sub(r"<(style|script)>.*?</\1>", "", page, flags=re.S)
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page))
    return htmllib.unescape(re.sub(r" ([.,:;)])", r"\1", text))


def test_writes_both_files(report, records):
    doc = json.loads((report / "claims.json").read_text())
    assert doc["schema"] == build.SCHEMA == "uplab-claims/2" and doc["provenance"] == PROVENANCE
    assert len(doc["claims"]) == 3 and all("adjusted" not in c for c in doc["claims"])
    for claim in doc["claims"]:
        (png,) = claim["plots"].values()
        assert base64.b64decode(png).startswith(PNG_MAGIC)
    assert base64.b64decode(doc["forest"]["png"]).startswith(PNG_MAGIC)
    html = (report / "index.html").read_text()
    assert html.count('<tr data-claim="') == 3
    assert html.count('<img src="data:image/png;base64,') == 4  # three claims' plots + the forest


def test_html_is_self_contained(report):
    html = (report / "index.html").read_text()
    refs = re.findall(r'(?:src|href)\s*=\s*"([^"]*)"', html)
    assert refs and all(r.startswith(("data:", "#")) for r in refs), refs
    assert not re.search(r"<link\b|@import|url\(|https?://", html)
    assert "default-src 'none'" in html  # the browser itself refuses anything external


def test_assembly_keeps_the_decisions_as_recorded(records):
    """Holm was applied per scale by the plugin: the report adjusts nothing again."""
    extra = family([result("dups_more_responsive", effects=(0.2, 0.3, 0.25, 0.4, 0.1), scale="small"),
                    result("o_proj_less_sensitive", effects=tuple(-e for e in (0.2, 0.3, 0.25, 0.4, 0.1)),
                           scale="small")])
    # n = 5, all in the claimed direction: exact p = 1/32 alone, Holm over 2: 1/16 > 0.05.
    assert [r.decision["p"] for r in extra] == [1 / 32, 1 / 32]
    assert [r.decision["p_adj"] for r in extra] == [1 / 16, 1 / 16]
    doc = build.assemble(records + extra, PROVENANCE)
    by_key = {(c["id"], c["case"], c["scale"]): c for c in doc["claims"]}
    for rec in records + extra:
        assert by_key[(rec.id, rec.case, rec.scale)]["decision"] == rec.decision
    # The exploratory result stays unadjusted, the per-scale families keep their own sizes.
    explor = by_key[("dups_more_responsive", "interleaved", "tiny")]
    assert explor["primary"] is False and explor["decision"]["p_adj"] == explor["decision"]["p"]
    assert {c["family"]["size"] for c in doc["claims"] if c["primary"]} == {2}


def test_sorted_and_deduplicated(records):
    again = result("dups_more_responsive", effects=(0.5,) * 4 + (0.6,) * 4)
    doc = build.assemble([records[2], records[1], records[0], again], PROVENANCE)
    assert [(c["id"], c["case"], c["scale"]) for c in doc["claims"]] == [
        ("dups_more_responsive", "contiguous", "tiny"),
        ("dups_more_responsive", "interleaved", "tiny"),
        ("o_proj_less_sensitive", "contiguous", "tiny")]
    assert doc["claims"][0]["decision"]["effect"] == pytest.approx(0.55)  # the rerun wins


def test_primary_table_and_exploratory_section_apart(report):
    html = (report / "index.html").read_text()
    primary = html[html.index('<table id="primary-table">'):html.index('<section id="exploratory"')]
    explor = html[html.index('<section id="exploratory"'):html.index("</section>", html.index('<section id="exploratory"'))]
    assert re.findall(r'<tr data-claim="([^"]+)"', primary) == ["dups_more_responsive[contiguous]",
                                                               "o_proj_less_sensitive[contiguous]"]
    assert re.findall(r'<tr data-claim="([^"]+)"', explor) == ["dups_more_responsive[interleaved]"]
    assert "Exploratory results (unadjusted; they never decide a claim)" in explor
    assert 'data-primary="false"' in explor and 'data-primary="true"' not in explor
    # The headline row: Holm verdict, both bounds at their Holm levels and which decided, both
    # tests' Holm p's, n with units, family.
    text = html_text(primary)
    assert "supported" in text and "≥ +0.183 (97.5 %), ≤ +0.325 (95 %); lower decided" in text
    assert "8 runs (seeds)" in text and " 0.0078 / " in text


def test_forest_plot_at_the_top_one_row_per_primary(report):
    doc = json.loads((report / "claims.json").read_text())
    assert [(r["id"], r["scale"]) for r in doc["forest"]["rows"]] == [
        ("dups_more_responsive", "tiny"), ("o_proj_less_sensitive", "tiny")]
    html = (report / "index.html").read_text()
    forest = html.index('<figure class="forest" data-rows="2">')
    assert forest < html.index('id="primary-table"') < html.index('id="exploratory"')
    assert html.index("<img", forest) == html.index("<img")  # the first image on the page


def test_supported_says_what_would_have_refuted_it(report):
    text = html_text((report / "index.html").read_text())
    # dups_more_responsive: greater, superiority, sesoi 0.1.
    assert ("this result would have been refuted had the upper bound, at its Holm-adjusted level, "
            "fallen below +0.1 (the sesoi)") in text


@pytest.mark.parametrize("direction, test, expected", [
    ("greater", "superiority", "upper bound, at its Holm-adjusted level, fallen below +0.1 (the sesoi)"),
    ("less", "superiority", "lower bound, at its Holm-adjusted level, risen above -0.1 (the sesoi)"),
    ("greater", "non-inferiority", "upper bound, at its Holm-adjusted level, fallen below -0.1 (the non-inferiority margin)"),
    ("less", "non-inferiority", "lower bound, at its Holm-adjusted level, risen above +0.1 (the non-inferiority margin)"),
    ("greater", "equivalence", "interval been shown outside ±0.1"),
])
def test_refuted_if_follows_the_protocol(direction, test, expected):
    d = Decision(effect=0.3, ci_low=0.2, ci_high=0.4, p=0.001, n=8, method="m", direction=direction,
                 sesoi=0.1, test=test)
    assert expected in view.refuted_if({"decision": d.to_dict()})


@pytest.mark.parametrize("low, high, direction, test, wording", [
    (-0.05, 0.08, "greater", "superiority", "no effect of interest (below the sesoi 0.1)"),
    (-0.4, -0.2, "greater", "superiority", "opposite direction"),
    (0.2, 0.4, "less", "superiority", "opposite direction"),
    (-0.4, -0.2, "greater", "non-inferiority", "worse than the margin 0.1"),
    (0.2, 0.4, "greater", "equivalence", "a difference of at least the sesoi"),
])
def test_refuted_wording(low, high, direction, test, wording):
    d = Decision(effect=(low + high) / 2, ci_low=low, ci_high=high, p=0.9, p_ref=0.001, n=8,
                 method="m", direction=direction, sesoi=0.1, test=test).to_dict()
    assert d["verdict"] == "refuted"
    assert view.refuted_as({"decision": d}) == wording


def test_inconclusive_states_its_detectable_effect(report):
    text = html_text((report / "index.html").read_text())
    assert ("minimum detectable effect 0.31 log ratio (at 80 % power); power at the sesoi (0.1) 22 %, "
            "α = 0.025") in text


def test_moved_baseline_is_flagged(tmp_path):
    rec = result("dups_more_responsive", expected="supported", baseline={
        "verdict": "supported", "effect": 0.6, "ci_low": 0.5, "ci_high": 0.7, "commit": "c" * 40,
        "recorded_at": "2026-11-01", "moved": True})
    still = result("o_proj_less_sensitive", effects=MIXED, expected="inconclusive", baseline={
        "verdict": "inconclusive", "effect": 0.0, "ci_low": -0.3, "ci_high": 0.3, "commit": "c" * 40,
        "recorded_at": "2026-11-01", "moved": False})
    html = build.render(build.assemble([rec, still], PROVENANCE))
    text = html_text(html)
    assert "1 moved outside the recorded interval" in text
    assert text.count("Moved: this effect lies outside the recorded interval") == 1
    assert "Baseline (commit cccccccccccc, 2026-11-01): supported, effect +0.6, interval [+0.5, +0.7]" in text
    moved_rows = [line for line, ok in text_table(build.assemble([rec, still], PROVENANCE)) if "(moved)" in line]
    assert len(moved_rows) == 1 and moved_rows[0].startswith("dups_more_responsive")


def test_protocol_and_deviations_are_shown(tmp_path):
    rec = result("top_down_gradient", effects=NEGATIVE)  # registry: one dated deviation
    text = html_text(build.render(build.assemble([rec], PROVENANCE)))
    entry = REGISTRY.entry("top_down_gradient")
    (dev,) = entry.deviations
    assert entry.card in text and entry.primary.metric in text and entry.primary.sesoi_why in text
    assert f"{dev.date} {dev.field} {dev.old} → {dev.new} {dev.why}" in text
    assert all(c in text for c in entry.controls)


def test_within_run_decision_names_its_units_and_no_seeds(tmp_path):
    rec = within()
    html = (build.write_report([rec], tmp_path, PROVENANCE)).read_text()
    text = html_text(html)
    assert "within one run" in text and "12 source layers of one run trained elsewhere" in text
    assert "seeds 0" not in text and "per-run effects" not in text
    assert "seeds used none (every decision was within one run)" in text  # provenance's 12 seeds: unused


def test_seeds_shown_are_the_seeds_used(report):
    text = html_text((report / "index.html").read_text())
    assert "seeds used 0, 1, 2, 3, 4, 5, 6, 7" in text  # the records' 8, not the provenance's 12
    assert "0, 1, 2, 3, 4, 5, 6, 7, 8" not in text


def test_skipped_claim_tests_are_listed_by_reason(tmp_path, records):
    skipped = [{"test": "t.py::a[small]", "reason": "gpu: needs 1 CUDA device"},
               {"test": "t.py::b[small]", "reason": "gpu: needs 1 CUDA device"},
               {"test": "t.py::a[full]", "reason": "full scale needs --base-model PATH"}]
    doc = build.assemble(records, PROVENANCE, skipped)
    assert doc["skipped"] == [
        {"reason": "full scale needs --base-model PATH", "tests": ["t.py::a[full]"]},
        {"reason": "gpu: needs 1 CUDA device", "tests": ["t.py::a[small]", "t.py::b[small]"]}]
    html = build.render(doc)
    assert 'id="skipped-table"' in html and "2 tests" in html and "t.py::b[small]" in html
    assert 'id="skipped-table"' not in build.render(build.assemble(records, PROVENANCE))
    build.write_document(doc, tmp_path)
    assert build.load(tmp_path)["skipped"] == doc["skipped"]
    bad = {**doc, "skipped": [{"reason": 1}]}
    (tmp_path / "claims.json").write_text(json.dumps(bad))
    with pytest.raises(UplabError, match="'skipped' must be a list of"):
        build.load(tmp_path)


def test_rebuild_reproduces_index_html(report):
    index = report / "index.html"
    original = index.read_bytes()
    index.unlink()
    assert build.rebuild(report) == index
    assert index.read_bytes() == original


def test_uplab_report_command_rebuilds(report, capsys):
    index = report / "index.html"
    original = index.read_bytes()
    index.write_text("stale")
    assert cli.main(["report", str(report)]) == 0
    assert capsys.readouterr().out.strip() == str(index)
    assert index.read_bytes() == original


def test_uplab_report_help(capsys):
    with pytest.raises(SystemExit):
        cli.main(["report", "--help"])
    out = capsys.readouterr().out
    assert "usage: uplab report [-h] DIR" in out and "claims.json" in out
    assert "uplab report DIR --record" in out and "uplab report --findings BASELINE" in out


@pytest.mark.parametrize("damage, message", [
    (lambda d: (d / "claims.json").unlink(), "no claims.json in *; run `pytest hypotheses/`*"),
    (lambda d: (d / "claims.json").write_text('{"schema": '),
     "*claims.json is not valid JSON (Expecting value at line 1, column 12); rerun*"),
    (lambda d: (d / "claims.json").write_text('{"schema": "other/9", "provenance": {}, "claims": []}'),
     "*claims.json: schema is 'other/9', expected 'uplab-claims/2'; rerun*"),
    (lambda d: (d / "claims.json").write_text(json.dumps(
        {**json.loads((d / "claims.json").read_text()), "forest": {"rows": 3}})),
     "*claims.json: 'forest' must be {rows: *; rerun*"),
    (lambda d: (d / "claims.json").write_text(json.dumps(
        {"schema": build.SCHEMA, "provenance": {}, "claims": [{"id": "x"}]})),
     "*claims.json: claim 0: claim record lacks 'scale', 'statement', 'method', 'expected', 'decision'; rerun*"),
    (lambda d: (d / "claims.json").write_bytes(b"\xff\xfe"), "cannot read *claims.json*"),
], ids=["missing", "truncated", "schema", "forest", "fields", "binary"])
def test_corrupt_claims_json_is_one_line_exit_2(report, capsys, damage, message):
    damage(report)
    before = (report / "index.html").read_bytes()
    assert cli.main(["report", str(report)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("uplab report: error: ")
    from fnmatch import fnmatch
    assert fnmatch(err.strip()[len("uplab report: error: "):], message), err
    assert (report / "index.html").read_bytes() == before  # nothing half-written


def _edit_first_claim(report: Path, edit) -> None:
    document = json.loads((report / "claims.json").read_text())
    edit(document["claims"][0])
    (report / "claims.json").write_text(json.dumps(document))  # allow_nan: writes NaN / Infinity


@pytest.mark.parametrize("edit, message", [
    (lambda c: c["decision"].update(effect="abc"), "decision.effect must be a finite number, got 'abc'"),
    (lambda c: c["decision"].update(p_adj=7), "decision.p_adj must be a probability in [0, 1], got 7"),
    (lambda c: c["decision"].update(p=float("nan")), "decision.p must be a probability in [0, 1], got nan"),
    (lambda c: c["decision"].update(ci_high=float("inf")), "decision.ci_high must be a finite number, got inf"),
    (lambda c: c["decision"].update(n="12"), "decision.n must be a whole number >= 0, got '12'"),
    (lambda c: c.update(effects=[0.1, "x"]), "field 'effects' must hold finite numbers"),
    (lambda c: c.update(seeds=[0, 1.5]), "field 'seeds' must hold whole numbers"),
], ids=["effect-text", "p-adj-7", "p-nan", "ci-inf", "n-text", "effects", "seeds"])
@pytest.mark.parametrize("record", [False, True], ids=["render", "record"])
def test_claims_json_numbers_are_checked_on_read(report, tmp_path, capsys, edit, message, record):
    """"Effect abc" and "Holm p = 7.000" were rendered, and written into the baseline by --record;
    NaN crashed --record and left a temp file among the baselines."""
    _edit_first_claim(report, edit)
    into = tmp_path / "baselines"
    into.mkdir()
    argv = ["report", str(report)] + (["--record", "--baseline-dir", str(into)] if record else [])
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err
    assert list(into.iterdir()) == []  # no baseline, no temp file


def test_a_baseline_that_cannot_be_written_leaves_no_temp_file(tmp_path):
    from harness.claims import baseline

    with pytest.raises(ValueError):
        baseline.write({"tiny": {"effect": float("nan")}}, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_bad_dir_is_one_line_exit_2(tmp_path, capsys):
    assert cli.main(["report", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err
    assert err == f"uplab report: error: {tmp_path / 'nope'} is not a directory; give the report " \
                  "directory that pytest printed (it holds claims.json)\n"


def test_writes_are_atomic(report, monkeypatch):
    """A write that dies half-way (full disk) leaves the old files whole and no temp files."""
    before = {p.name: p.read_bytes() for p in report.iterdir()}

    def full_disk(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(OSError, match="No space left"):
        build.write_report([result("dups_more_responsive")], report, PROVENANCE)
    with pytest.raises(UplabError, match="cannot write .*index.html: No space left on device; check"):
        build.rebuild(report)
    assert {p.name: p.read_bytes() for p in report.iterdir()} == before


def test_text_table_primaries_then_exploratory(records):
    changed = result("first_layers_outliers", effects=NEGATIVE, expected="supported")  # now refuted
    doc = build.assemble(records + [changed], PROVENANCE)
    lines = text_table(doc)
    assert lines[0][0].split() == ["claim", "scale", "kind", "baseline", "verdict", "effect", "bound",
                                   "/", "interval", "p", "p_adj", "n", "family"]
    kinds = [line.split()[2] for line, _ in lines[1:]]
    assert kinds == ["primary"] * 3 + ["explor."]
    assert lines[-1][0].startswith("dups_more_responsive[interleaved]")
    assert re.search(r"\s—\s+8 runs \(seeds\)\s+—$", lines[-1][0])  # exploratory: no p_adj, no family
    flagged = [line for line, ok in lines if not ok]
    assert len(flagged) == 1 and flagged[0].startswith("first_layers_outliers[normal] ")
    assert "refuted" in flagged[0].split()


TOY_REGISTRY = """
schema: uplab.registry/1
registered: "2026-11-29"
alpha: 0.05
claims:
  a_claim:
    card: "the card says A"
    statement: A holds.
    module: toy
    construction: "a toy claim of this test: its effects are given, not measured"
    primary: {case: one, metric: effect a, unit: nats, direction: greater, test: superiority,
              sesoi: 0.1, sesoi_why: "a tenth of a nat is the least that matters"}
    secondary: [{case: two, why: "another layout"}]
    scales: [tiny]
"""

TOY_CONFTEST = """
from harness.claims.measured import Measured
from harness.claims.measures import MEASURES

pytest_plugins = ["fixtures.plugin"]

def measure(lab, seeds, case):
    effects = [0.3, 0.2, 0.4, 0.1, 0.3, 0.2, 0.25, 0.35] if case == "one" else [0.1, -0.1] * 4
    return Measured(effects=effects[:len(seeds)], seeds=seeds[:8], runs=["run-a"])

MEASURES["a_claim"] = measure
"""


def test_rebuild_from_a_pytest_run(pytester, monkeypatch):
    """End to end: the plugin writes the report (a primary and an exploratory case); `uplab
    report` reproduces its index.html byte for byte."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    pytester.makeconftest(TOY_CONFTEST)
    (pytester.path / "registry.yaml").write_text(TOY_REGISTRY)
    pytester.makepyfile("""
        import pytest
        from fixtures.params import claim_params

        @pytest.mark.parametrize("scale, case", claim_params("a_claim", ["tiny"], registry="registry.yaml"))
        def test_a(scale, case, claim):
            result = claim.decide("a_claim", case)
            assert result.holds, result.message
    """)
    pytester.runpytest("--registry", "registry.yaml", "--seeds", "8", "--no-baseline").assert_outcomes(passed=2)
    out = pytester.path / "reports" / "out"
    doc = json.loads((out / "claims.json").read_text())
    assert doc["schema"] == build.SCHEMA
    assert sorted((c["case"], c["primary"]) for c in doc["claims"]) == [("one", True), ("two", False)]
    assert [r["id"] for r in doc["forest"]["rows"]] == ["a_claim"]
    original = (out / "index.html").read_bytes()
    (out / "index.html").unlink()
    assert cli.main(["report", str(out)]) == 0
    assert (out / "index.html").read_bytes() == original


def test_record_writes_baselines_per_scale(report, tmp_path, capsys, records):
    """`uplab report DIR --record`: one baseline per scale with commit, packages, protocol hashes."""
    small = result("dups_more_responsive", scale="small")
    build.write_report(records + [small], report, PROVENANCE)
    into = tmp_path / "expected"
    assert cli.main(["report", str(report), "--record", "--baseline-dir", str(into)]) == 0
    assert capsys.readouterr().out.split() == [str(into / "small.json"), str(into / "tiny.json")]
    tiny = json.loads((into / "tiny.json").read_text())
    assert tiny["commit"] == PROVENANCE["git_commit"] and tiny["packages"] == PROVENANCE["packages"]
    assert tiny["protocol"] == {cid: REGISTRY.entry(cid).protocol_hash
                                for cid in ("dups_more_responsive", "o_proj_less_sensitive")}
    assert [(r["claim"], r["case"], r["primary"]) for r in tiny["results"]] == [
        ("dups_more_responsive", "contiguous", True), ("dups_more_responsive", "interleaved", False),
        ("o_proj_less_sensitive", "contiguous", True)]
    first = tiny["results"][0]
    assert first["verdict"] == "supported" and first["p_adj"] == records[0].decision["p_adj"]
    assert first["direction"] == "greater" and first["units"] == "8 runs (seeds)"
    from harness.claims import baseline

    loaded = baseline.load(into, "tiny")
    assert loaded.get("dups_more_responsive", "contiguous")["ci_low"] == records[0].decision["ci_low"]
    assert json.loads((into / "small.json").read_text())["results"][0]["claim"] == "dups_more_responsive"


@pytest.mark.parametrize("argv, message", [
    (["--record", "--compare", "x"], "--record and --compare are separate steps*"),
    (["--baseline-dir", "x"], "--readme goes with --findings, --baseline-dir with --record"),
    (["--findings", "b.json"], "--findings takes baseline files alone*"),
], ids=["record+compare", "baseline-dir alone", "findings with DIR"])
def test_record_flags_are_checked(report, capsys, argv, message):
    assert cli.main(["report", str(report), *argv]) == 2
    err = capsys.readouterr().err
    from fnmatch import fnmatch
    assert err.count("\n") == 1 and fnmatch(err.strip()[len("uplab report: error: "):], message), err


def test_record_of_an_empty_report_is_refused(tmp_path, capsys):
    build.write_report([], tmp_path, PROVENANCE)
    assert cli.main(["report", str(tmp_path), "--record", "--baseline-dir", str(tmp_path / "b")]) == 2
    assert "holds no claim results: nothing to record" in capsys.readouterr().err
    assert not (tmp_path / "b").exists()


@pytest.mark.parametrize("layout", ["loose", "packed", "detached", "worktree", "unborn"])
def test_git_commit_read_from_dot_git(tmp_path, layout):
    sha = "1234567890abcdef1234567890abcdef12345678"
    git = tmp_path / "repo" / ".git"
    (git / "refs" / "heads").mkdir(parents=True)
    (git / "HEAD").write_text("ref: refs/heads/main\n")
    if layout == "loose":
        (git / "refs" / "heads" / "main").write_text(sha + "\n")
    elif layout == "packed":
        (git / "packed-refs").write_text(f"# pack-refs with: peeled\n{sha} refs/heads/main\n")
    elif layout == "detached":
        (git / "HEAD").write_text(sha + "\n")
    elif layout == "worktree":
        wt = git / "worktrees" / "wt"
        wt.mkdir(parents=True)
        (wt / "HEAD").write_text("ref: refs/heads/main\n")
        (wt / "commondir").write_text("../..\n")
        (git / "refs" / "heads" / "main").write_text(sha + "\n")
        (tmp_path / "wt").mkdir()
        (tmp_path / "wt" / ".git").write_text(f"gitdir: {wt}\n")
    start = tmp_path / ("wt" if layout == "worktree" else "repo") / "sub"
    start.mkdir(parents=True)
    assert provenance.git_commit(start) == (None if layout == "unborn" else sha)


def test_provenance_collect():
    info = provenance.collect(root=ROOT, seeds=[0, 1], runs=["b", "a", "b"], devices=["cpu"],
                              started_at="t", wall_time_s=1.23456, scale="tiny")
    assert info["runs"] == ["a", "b"] and info["wall_time_s"] == 1.235 and info["scale"] == "tiny"
    assert set(info["packages"]) >= {"torch", "transformers", "mergekit", "peft", "numpy", "scipy"}
    json.dumps(info, allow_nan=False)


# -- harness.plots ------------------------------------------------------------------------------

def test_png_bytes_of_figure_and_bytes():
    png = png_bytes(effects_strip([0.1, -0.2, 0.3], direction="less", sesoi=0.05, ci=(-0.2, 0.3)))
    assert png.startswith(PNG_MAGIC)
    assert png_bytes(png) == png
    with pytest.raises(ValueError, match="not a PNG"):
        png_bytes(b"GIF89a")
    with pytest.raises(TypeError, match="matplotlib Figure or PNG bytes"):
        png_bytes("plot.png")


def test_effects_strip_is_deterministic_and_checks_input():
    a = png_bytes(effects_strip([0.1, 0.2], seeds=[3, 4], title="t"))
    assert a == png_bytes(effects_strip([0.1, 0.2], seeds=[3, 4], title="t"))
    with pytest.raises(ValueError, match="2 seeds for 3 effects"):
        effects_strip([1, 2, 3], seeds=[0, 1])
    with pytest.raises(ValueError, match="non-empty 1-D"):
        effects_strip([])
