"""The claim report (reports/): claims.json + self-contained index.html, Holm across the report,
atomic writes, `uplab report DIR` rebuilding the page, and bad input answered in one line."""

from __future__ import annotations

import base64
import json
import os
import re
from pathlib import Path

import pytest

from harness import cli
from harness.errors import UplabError
from harness.plots import PNG_MAGIC, effects_strip, png_bytes
from harness.stats import decide, holm, within_run
from reports import build, provenance
from reports.records import ClaimRecord
from reports.view import text_table

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[1]
PROVENANCE = {"git_commit": "0" * 40, "started_at": "2026-01-01T00:00:00+00:00",
              "wall_time_s": 1.5, "devices": ["cpu: test"], "seeds": list(range(8)),
              "runs": ["r1"], "packages": {"numpy": "2.0"}}


def record(id="dups_more_responsive", effects=(0.3, 0.2, 0.4, 0.1, 0.3, 0.2, 0.25, 0.35),
           scale="tiny", case="", expected="supported", reason=None, plots=True, **kw) -> ClaimRecord:
    d = decide(list(effects), direction="greater")
    pngs = {}
    if plots:
        pngs["per-seed effects"] = base64.b64encode(png_bytes(effects_strip(effects))).decode()
    return ClaimRecord(id=id, scale=scale, statement=f"{id} holds", method="log ratio",
                       expected=expected, reason=reason, decision=d.to_dict(), case=case,
                       nodeid=f"hypotheses/test_x.py::test_{id}[{scale}]", direction="greater",
                       sesoi=0.0, effects=list(effects), seeds=list(range(len(effects))),
                       runs=["r1"], plots=pngs, **kw)


@pytest.fixture
def records() -> list[ClaimRecord]:
    return [
        record("dups_more_responsive", case="contiguous"),
        record("dups_more_responsive", case="interleaved", scale="small"),
        record("o_proj_less_sensitive", effects=(0.3, -0.2, 0.1, -0.4, 0.2, -0.1, 0.05, -0.3),
               expected="inconclusive", reason="tiny: o_proj and down_proj fill alike, effect 0.01"),
    ]


@pytest.fixture
def report(tmp_path, records) -> Path:
    build.write_report(records, tmp_path / "out", PROVENANCE)
    return tmp_path / "out"


def test_writes_both_files(report, records):
    doc = json.loads((report / "claims.json").read_text())
    assert doc["schema"] == build.SCHEMA and doc["provenance"] == PROVENANCE
    assert len(doc["claims"]) == 3
    for claim in doc["claims"]:
        (png,) = claim["plots"].values()
        assert base64.b64decode(png).startswith(PNG_MAGIC)
    html = (report / "index.html").read_text()
    assert html.count('<tr data-claim="') == 3
    assert html.count('<img src="data:image/png;base64,') == 3
    assert "tiny: o_proj and down_proj fill alike, effect 0.01" in html


def test_html_is_self_contained(report):
    html = (report / "index.html").read_text()
    refs = re.findall(r'(?:src|href)\s*=\s*"([^"]*)"', html)
    assert refs and all(r.startswith(("data:", "#")) for r in refs), refs
    assert not re.search(r"<link\b|@import|url\(|https?://", html)
    assert "default-src 'none'" in html  # the browser itself refuses anything external


def test_holm_across_the_whole_report(report):
    claims = json.loads((report / "claims.json").read_text())["claims"]
    raw = [c["decision"]["p"] for c in claims]
    assert [c["adjusted"]["p_adj"] for c in claims] == pytest.approx(holm(raw))
    # Per-test decisions stay unadjusted: what each test asserted is what the report shows.
    assert all(c["decision"]["p_adj"] == c["decision"]["p"] for c in claims)


def test_holm_can_weaken_a_verdict_only_in_the_adjusted_column(tmp_path):
    # n = 5, all positive: exact sign-flip p = 1/32 < 0.05 alone; Holm over 3 gives 3/32 > 0.05.
    recs = [record(f"c{i}", effects=(0.2, 0.3, 0.25, 0.4, 0.1), plots=False) for i in range(3)]
    doc = build.assemble(recs, PROVENANCE)
    assert [c["decision"]["verdict"] for c in doc["claims"]] == ["supported"] * 3
    assert [c["adjusted"]["verdict"] for c in doc["claims"]] == ["inconclusive"] * 3


def test_sorted_and_deduplicated(records):
    again = record("dups_more_responsive", case="contiguous", effects=(0.5,) * 4 + (0.6,) * 4)
    doc = build.assemble([records[2], records[1], records[0], again], PROVENANCE)
    assert [(c["id"], c["case"], c["scale"]) for c in doc["claims"]] == [
        ("dups_more_responsive", "contiguous", "tiny"),
        ("dups_more_responsive", "interleaved", "small"),
        ("o_proj_less_sensitive", "", "tiny")]
    assert doc["claims"][0]["decision"]["effect"] == pytest.approx(0.55)  # the rerun wins


def test_within_run_decision_is_flagged(tmp_path):
    d = within_run([0.5, 0.4, 0.7, 0.6, 0.3, 0.8], direction="greater")
    rec = ClaimRecord(id="first_layers_outliers", scale="full", statement="s", method="m",
                      expected="supported", decision=d.to_dict())
    html = (build.write_report([rec], tmp_path, PROVENANCE)).read_text()
    assert "within one run" in html


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


@pytest.mark.parametrize("damage, message", [
    (lambda d: (d / "claims.json").unlink(), "no claims.json in *; run `pytest hypotheses/`*"),
    (lambda d: (d / "claims.json").write_text('{"schema": '),
     "*claims.json is not valid JSON (Expecting value at line 1, column 12); rerun*"),
    (lambda d: (d / "claims.json").write_text('{"schema": "other/9", "provenance": {}, "claims": []}'),
     "*claims.json: schema is 'other/9', expected 'uplab-claims/1'; rerun*"),
    (lambda d: (d / "claims.json").write_text(json.dumps(
        {"schema": build.SCHEMA, "provenance": {}, "claims": [{"id": "x"}]})),
     "*claims.json: claim 0: claim record lacks 'scale', 'statement', 'method', 'expected', 'decision'; rerun*"),
    (lambda d: (d / "claims.json").write_bytes(b"\xff\xfe"), "cannot read *claims.json*"),
], ids=["missing", "truncated", "schema", "fields", "binary"])
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
        build.write_report([record("x", plots=False)], report, PROVENANCE)
    with pytest.raises(UplabError, match="cannot write .*index.html: No space left on device; check"):
        build.rebuild(report)
    assert {p.name: p.read_bytes() for p in report.iterdir()} == before


def test_text_table_flags_unexpected_verdicts(records):
    doc = build.assemble(records + [record("refuted_one", effects=(-0.3,) * 8)], PROVENANCE)
    lines = text_table(doc)
    assert lines[0][0].split() == ["claim", "scale", "expected", "verdict", "Holm", "effect", "CI",
                                   "p", "p_adj", "n"]
    flagged = [line for line, ok in lines if not ok]
    assert len(flagged) == 1 and flagged[0].startswith("refuted_one ")


def test_rebuild_from_a_pytest_run(pytester, monkeypatch):
    """End to end: the plugin writes the report; `uplab report` reproduces its index.html."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    pytester.makeconftest('pytest_plugins = ["fixtures.plugin"]\n')
    pytester.makepyfile("""
        def test_a(claim):
            claim.check(id="a", statement="s", method="m", effects=[1, 2, 3, 4, 5, 6, 7, 8],
                        direction="greater")
    """)
    pytester.runpytest().assert_outcomes(passed=1)
    out = pytester.path / "reports" / "out"
    original = (out / "index.html").read_bytes()
    (out / "index.html").unlink()
    assert cli.main(["report", str(out)]) == 0
    assert (out / "index.html").read_bytes() == original


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
