"""Probe results kept beside the runs (harness.claims.memo): computed once, read back bit for bit,
never written for a run outside a suite's cache, recomputed when the stored file is torn."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness.claims import memo


@dataclass
class _Run:
    path: Path


def _entry(tmp_path: Path, complete: bool = True) -> _Run:
    entry = tmp_path / "cache" / "abc123"
    entry.mkdir(parents=True)
    if complete:
        (entry / "COMPLETE").write_text("")
    return _Run(entry)


def test_a_probe_is_computed_once_and_read_back_exactly(tmp_path):
    run, calls = _entry(tmp_path), []
    value = [0.1 + 0.2, 1 / 3, -2.5e-17]

    def compute():
        calls.append(1)
        return value

    assert memo.stored(run, ["skip_rises", "target", None, [[3]]], compute) == value
    assert memo.stored(run, ["skip_rises", "target", None, [[3]]], compute) == value
    assert len(calls) == 1
    files = list((tmp_path / "cache" / "probes" / "abc123").glob("*.json"))
    assert len(files) == 1
    memo.stored(run, ["skip_rises", "target", None, [[4]]], compute)  # another probe, another file
    assert len(calls) == 2


def test_a_torn_file_is_recomputed_and_a_foreign_run_never_written(tmp_path):
    run = _entry(tmp_path)
    memo.stored(run, ["x"], lambda: 1.5)
    (f,) = (tmp_path / "cache" / "probes" / "abc123").glob("*.json")
    f.write_text("{not json")
    assert memo.stored(run, ["x"], lambda: 2.5) == 2.5
    assert memo.stored(run, ["x"], lambda: 9.9) == 2.5
    elsewhere = _Run(tmp_path / "checkpoint")
    elsewhere.path.mkdir()
    assert memo.stored(elsewhere, ["x"], lambda: 3.5) == 3.5
    assert memo.stored(elsewhere, ["x"], lambda: 4.5) == 4.5
    assert not (tmp_path / "probes").exists()
