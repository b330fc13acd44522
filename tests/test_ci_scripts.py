"""The scripts under .ci/ that GPU jobs run (issue 23.7, 23.8), rehearsed on the CPU: the junit
counter that tells errors from verdicts, the nightly's verdict comparison with its noise
tolerance, and the shape of .ci/gpu-check (its steps, their order and time limits)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CI = ROOT / ".ci"


def junit(tmp_path: Path, *cases: str) -> Path:
    body = "".join(f'<testcase classname="t" name="c{i}">{c}</testcase>' for i, c in enumerate(cases))
    path = tmp_path / "junit.xml"
    path.write_text(f'<?xml version="1.0"?><testsuites><testsuite name="pytest">{body}</testsuite></testsuites>')
    return path


def count(path: Path, *flags: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(CI / "junit-count"), str(path), *flags],
                          capture_output=True, text=True)


VERDICT = '<failure message="AssertionError: claim refuted">x</failure>'
CRASH = '<failure message="RuntimeError: CUDA error: an illegal memory access">x</failure>'
SETUP = '<error message="failed on setup with &quot;ValueError: x&quot;">x</error>'
SKIP = '<skipped message="gpu: needs 1 CUDA device" />'


@pytest.mark.parametrize("cases, flags, code", [
    (("", ""), (), 0),
    (("", VERDICT), ("--errors-only",), 0),  # a verdict is not an error of the smoke
    (("", VERDICT), (), 1),  # but fails a unit-test step
    (("", CRASH), ("--errors-only",), 1),
    (("", SETUP), ("--errors-only",), 1),
    ((SKIP, SKIP), ("--errors-only",), 1),  # nothing ran: nothing was checked
    ((SKIP, ""), (), 0),
])
def test_junit_count_tells_errors_from_verdicts(tmp_path, cases, flags, code):
    done = count(junit(tmp_path, *cases), *flags)
    assert done.returncode == code, done.stdout + done.stderr


def claims(tmp_path: Path, name: str, verdicts: dict[str, str]) -> Path:
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps({"schema": "uplab-claims/2", "claims": [
        {"id": cid, "scale": "small", "case": "c", "decision": {"verdict": v}} for cid, v in verdicts.items()]}))
    return path


def nightly(old: Path, new: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(CI / "nightly-compare"), str(old), str(new)],
                          capture_output=True, text=True, cwd=ROOT)


LAST = {"a": "supported", "b": "refuted", "c": "inconclusive"}


@pytest.mark.parametrize("tonight, code", [
    (LAST, 0),
    ({**LAST, "a": "inconclusive"}, 0),  # one one-step move: seed noise, tolerated
    ({**LAST, "d": "supported"}, 0),  # a new claim is reported, not failed
    ({**LAST, "a": "inconclusive", "b": "inconclusive"}, 1),  # two one-step moves: more than noise
    ({**LAST, "a": "refuted"}, 1),  # a jump
    ({"a": "supported", "b": "refuted"}, 1),  # a claim disappeared
])
def test_nightly_compares_verdicts_with_a_noise_tolerance(tmp_path, tonight, code):
    done = nightly(claims(tmp_path, "last", LAST), claims(tmp_path, "tonight", tonight))
    assert done.returncode == code, done.stdout + done.stderr
    assert ("night FAILS" if code else "night passes") in done.stdout


def test_nightly_compare_of_an_unreadable_file_is_exit_2(tmp_path):
    (tmp_path / "bad.json").write_text("{")
    done = nightly(tmp_path / "bad.json", claims(tmp_path, "tonight", LAST))
    assert done.returncode == 2 and "error" in done.stderr


def gpu_check_steps() -> list[tuple[str, int, str]]:
    """(name, time limit s, command text) of each `step` in .ci/gpu-check, in order."""
    text = (CI / "gpu-check").read_text()
    return [(m.group(1), int(m.group(2)), m.group(3))
            for m in re.finditer(r"^step (\w+) (\d+) (.*?)(?=^step |^echo \"total)", text, re.M | re.S)]


def test_gpu_check_runs_its_four_steps_in_order_within_eight_minutes():
    steps = gpu_check_steps()
    assert [name for name, _, _ in steps] == ["unit", "mfu", "claims", "fsdp"]
    assert sum(limit for _, limit, _ in steps) <= 8 * 60
    unit, mfu, smoke, fsdp = (cmd for _, _, cmd in steps)
    assert "pytest tests/ -m gpu" in unit and ".ci/junit-count" in unit and "--errors-only" not in unit
    assert "benchmarks/bench_mfu.py" in mfu and "benchmarks/bench_real_gpu.py" in mfu
    assert "--seeds 2 --no-baseline" in smoke and "--errors-only" in smoke
    assert "run_launched(spec, sys.argv[1], 1, config=command.FSDP_CONFIG" in fsdp


def test_gpu_check_parses_as_bash():
    assert subprocess.run(["bash", "-n", str(CI / "gpu-check")]).returncode == 0


def test_nightly_counts_a_move_through_smaller_as_one_step(tmp_path):
    last = claims(tmp_path, "last", {"a": "supported"})
    assert nightly(last, claims(tmp_path, "t1", {"a": "smaller"})).returncode == 0
    assert nightly(last, claims(tmp_path, "t2", {"a": "refuted"})).returncode == 1
