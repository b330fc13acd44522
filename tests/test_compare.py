"""`uplab report DIR --compare OLD` (reports/compare.py): verdicts matched by (id, scale, case);
changed verdicts and lost claims fail (exit 1), new claims are listed (exit 0), bad input is one
line and exit 2. The verdict is the record's (Holm's for a primary); exploratory rows are marked."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness import cli
from reports import build, compare
from tests.report_helpers import family, result


def claim(id: str, verdict: str, scale: str = "tiny", case: str = "", expected: str | None = None,
          nodeid: str | None = None, primary: bool = True) -> dict:
    return {"id": id, "scale": scale, "case": case, "expected": expected or verdict, "primary": primary,
            "decision": {"verdict": verdict, "p": 0.01, "p_adj": 0.02},
            "nodeid": nodeid or f"hypotheses/test_x.py::test_{id}[{scale}-{case}]"}


def write(path: Path, claims: list[dict], schema: str = build.SCHEMA) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"schema": schema, "provenance": {}, "claims": claims}))
    return path


BASE = [
    claim("dups_more_responsive", "supported", case="contiguous"),
    claim("dups_more_responsive", "supported", case="interleaved"),
    claim("dups_more_responsive", "inconclusive", scale="small", case="contiguous"),
    claim("first_layers_outliers", "refuted"),
]


def run(capsys, old: Path, new: Path) -> tuple[int, str, str]:
    code = cli.main(["report", str(new), "--compare", str(old)])
    out, err = capsys.readouterr()
    return code, out, err


def test_same_verdicts_pass(tmp_path, capsys):
    old = write(tmp_path / "old.json", BASE)
    new = write(tmp_path / "new" / "claims.json", [dict(c) for c in reversed(BASE)])
    code, out, err = run(capsys, old, new.parent)  # a report directory works as well as its file
    assert (code, err) == (0, "")
    assert out.splitlines()[-1] == "0 changed, 0 disappeared, 0 appeared, 4 unchanged: ok"
    assert not (new.parent / "index.html").exists()  # comparing writes nothing


def test_changed_verdict_fails_with_a_table(tmp_path, capsys):
    old = write(tmp_path / "old.json", BASE)
    changed = [*BASE[:2], claim("dups_more_responsive", "supported", scale="small", case="contiguous",
                                expected="inconclusive"), BASE[3]]
    code, out, _ = run(capsys, old, write(tmp_path / "new.json", changed))
    assert code == 1
    assert out.splitlines() == [
        f"verdicts of {tmp_path / 'new.json'} against {tmp_path / 'old.json'}",
        "",
        "verdict changed (1):",
        "  claim                 scale  case        old           new        expected",
        "  dups_more_responsive  small  contiguous  inconclusive  supported  inconclusive",
        "",
        "1 changed, 0 disappeared, 0 appeared, 3 unchanged: FAILED",
    ]


def test_matched_by_scale_and_case(tmp_path):
    """The same claim at another scale or case is another result: no cross-matching."""
    old = [claim("c", "supported", case="a"), claim("c", "refuted", case="b")]
    new = [claim("c", "refuted", case="b"), claim("c", "supported", case="a"),
           claim("c", "refuted", scale="small", case="a")]
    result = compare.compare(old, new)
    assert (result.changed, result.disappeared, result.unchanged) == ([], [], 2)
    assert [k for k, _ in result.appeared] == [("c", "small", "a")]


def test_disappeared_claim_fails(tmp_path, capsys):
    old = write(tmp_path / "old.json", BASE)
    code, out, _ = run(capsys, old, write(tmp_path / "new.json", BASE[:3]))
    assert code == 1
    assert "disappeared (1):" in out and "  first_layers_outliers  tiny   -     refuted" in out
    assert out.splitlines()[-1] == "0 changed, 1 disappeared, 0 appeared, 3 unchanged: FAILED"


def test_appeared_claim_is_listed_not_failed(tmp_path, capsys):
    old = write(tmp_path / "old.json", BASE)
    code, out, _ = run(capsys, old, write(tmp_path / "new.json", [*BASE, claim("upscale_room", "supported")]))
    assert code == 0
    assert "appeared (not a failure) (1):" in out and "  upscale_room  tiny   -     supported" in out
    assert out.splitlines()[-1] == "0 changed, 0 disappeared, 1 appeared, 4 unchanged: ok"


def test_exploratory_change_is_marked_and_an_unrecorded_one_shows_a_dash(tmp_path, capsys):
    old = write(tmp_path / "old.json", [*BASE, claim("c", "supported", case="x", primary=False)])
    flipped = {**claim("c", "refuted", case="x", primary=False), "expected": None}
    code, out, _ = run(capsys, old, write(tmp_path / "new.json", [*BASE, flipped]))
    assert code == 1
    assert "  c [exploratory]  tiny   x     supported  refuted  -" in out.splitlines()


def test_an_older_report_without_primary_compares_as_primary(tmp_path, capsys):
    """uplab-claims/1 records had no `primary`: read as primary, compared by their verdict."""
    older = [{k: v for k, v in c.items() if k != "primary"} for c in BASE]
    old = write(tmp_path / "old.json", older, schema="uplab-claims/1")
    assert run(capsys, old, write(tmp_path / "new.json", BASE))[0] == 0
    changed = [*BASE[:3], claim("first_layers_outliers", "supported", expected="refuted")]
    code, out, _ = run(capsys, old, write(tmp_path / "new.json", changed))
    assert code == 1 and "  first_layers_outliers  tiny   -     refuted  supported  refuted" in out
    assert "[exploratory]" not in out


def test_one_key_from_two_tests_is_told_apart_by_nodeid(tmp_path):
    twice = [claim("c", "supported", nodeid="hypotheses/test_a.py::t"),
             claim("c", "refuted", nodeid="hypotheses/test_b.py::t")]
    flipped = [claim("c", "refuted", nodeid="hypotheses/test_a.py::t"),
               claim("c", "refuted", nodeid="hypotheses/test_b.py::t")]
    result = compare.compare(twice, flipped)
    assert [k for k, _, _ in result.changed] == [("c", "tiny", "", "hypotheses/test_a.py::t")]
    assert "c (hypotheses/test_a.py::t)" in "\n".join(compare.text(result, "old", "new"))


@pytest.mark.parametrize("content, message", [
    (None, "*old.json does not exist; give a claims.json or the report directory that holds one"),
    ('{"schema": ', "*old.json is not valid JSON (Expecting value at line 1, column 12); give a claims.json*"),
    (b"\xff\xfe", "cannot read *old.json*"),
    ("[]", "*old.json is not a uplab claims.json: no 'schema': 'uplab-claims/...' at its top level"),
    ('{"schema": "other/1", "claims": []}', "*is not a uplab claims.json: no 'schema'*"),
    ('{"schema": "uplab-claims/1", "claims": {}}', "*is not a uplab claims.json: 'claims' must be a list"),
    ('{"schema": "uplab-claims/1", "claims": [{"id": "x"}]}',
     "*is not a uplab claims.json: claim 0 lacks a string 'id' and 'scale'"),
    ('{"schema": "uplab-claims/1", "claims": [{"id": "x", "scale": "tiny", "decision": {"verdict": "yes"}}]}',
     "*is not a uplab claims.json: claim 0 (x) has no decision.verdict in ('supported', 'smaller', 'refuted', 'inconclusive', 'not in regime')"),
    ('{"schema": "uplab-claims/2", "claims": [{"id": "x", "scale": "tiny", "decision": {"verdict": "refuted"}, '
     '"primary": "no"}]}', "*is not a uplab claims.json: claim 0 ('x'): 'primary' must be true or false, got str"),
], ids=["missing", "truncated", "binary", "list", "schema", "claims", "fields", "verdict", "primary"])
def test_bad_input_is_one_line_exit_2(tmp_path, capsys, content, message):
    old = tmp_path / "old.json"
    if isinstance(content, bytes):
        old.write_bytes(content)
    elif content is not None:
        old.write_text(content)
    new = write(tmp_path / "new.json", BASE)
    code, out, err = run(capsys, old, new)
    assert code == 2 and out == "" and err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("uplab report: error: ")
    from fnmatch import fnmatch
    assert fnmatch(err.strip()[len("uplab report: error: "):], message), err


def test_reports_written_by_the_report_code(tmp_path, capsys):
    """Two reports from build.write_report (as pytest writes them: a Holm family of primaries and
    an exploratory case): a flipped primary and a flipped exploratory effect are both caught."""
    def report(folder: str, flip: str = "") -> Path:
        effects = {"dups_more_responsive": [0.3, 0.2, 0.4, 0.1, 0.3, 0.2, 0.25, 0.35],
                   "o_proj_less_sensitive": [-0.3, -0.2, -0.4, -0.1, -0.3, -0.2, -0.25, -0.35],
                   "interleaved": [0.2, 0.1, 0.3, 0.2, 0.1, 0.2, 0.15, 0.25]}
        if flip:
            effects[flip] = [-e for e in effects[flip]]
        records = [*family([result("dups_more_responsive", effects=effects["dups_more_responsive"]),
                            result("o_proj_less_sensitive", effects=effects["o_proj_less_sensitive"])]),
                   result("dups_more_responsive", "interleaved", effects=effects["interleaved"])]
        build.write_report(records, tmp_path / folder, {"devices": [], "seeds": list(range(8))})
        return tmp_path / folder

    old = report("old")
    assert run(capsys, old, report("same"))[0] == 0
    code, out, _ = run(capsys, old, report("explor", "interleaved"))
    assert code == 1
    assert "  dups_more_responsive [exploratory]  tiny   interleaved  supported  refuted  -" in out
    code, out, _ = run(capsys, old, report("primary", "o_proj_less_sensitive"))
    assert code == 1
    assert "  o_proj_less_sensitive  tiny   contiguous  supported  refuted  -" in out
