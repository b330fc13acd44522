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


def test_weight_deltas_read_back_from_disk_equal_the_computed_rows(tmp_path):
    import torch
    from safetensors.torch import save_file

    from harness import tiny
    from harness.claims import lab as lab_mod
    from harness.runs.result import snapshot_name

    run = _entry(tmp_path)
    model = tiny.build(tiny.preset("tiny"), 0)
    state = {k: v.contiguous() for k, v in model.state_dict().items() if k != "lm_head.weight"}
    save_file(state, run.path / snapshot_name(0))
    torch.manual_seed(0)
    save_file({k: v + 0.01 * torch.randn_like(v) for k, v in state.items()}, run.path / snapshot_name(8))
    (tmp_path / "config.json").write_text("{}")
    run.snapshot_path = lambda step=None: run.path / snapshot_name(8 if step is None else step)

    lab_mod._DELTAS.clear()
    first = lab_mod.deltas(run, None)
    assert list((tmp_path / "cache" / "probes" / "abc123").glob("*.json"))
    lab_mod._DELTAS.clear()
    for f in run.path.glob("step-*.safetensors"):
        f.unlink()  # read back, not recomputed: the snapshots are gone
    again = lab_mod.deltas(run, None)
    assert again == first and first and all(isinstance(r, lab_mod.DeltaRow) for r in again)
