"""The run cache: reuse across calls and processes, one writer per entry, a killed writer leaves
nothing that reads as complete, corrupt entries are caught, a full disk is one clear line."""

import errno
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

from harness.data import DataSpec
from harness.errors import UplabError
from harness.runs import Engine, RunSpec, Scratch, entry_key, get_or_run, lookup, make
from harness.runs.cache import MARKER

torch.set_num_threads(1)
ROOT = Path(__file__).resolve().parents[1]

WORKER = textwrap.dedent("""
    import os, sys, time, pathlib, torch
    torch.set_num_threads(1)
    from harness.runs import RunSpec, get_or_run
    spec = RunSpec.from_json(pathlib.Path(sys.argv[1]).read_text())
    flags = pathlib.Path(sys.argv[4])
    def on_write(path):
        if sys.argv[3] == "hang":  # stop mid-write: one snapshot on disk, no marker yet
            (flags / "ready").write_text(str(path))
            time.sleep(300)
    def trained(info):
        (flags / f"trained-{os.getpid()}").touch()
    get_or_run(spec, sys.argv[2], callbacks=(trained,), _on_write=on_write)
    print("done")
""")


def spec(**kw) -> RunSpec:
    fields = dict(base=Scratch(seed=0), steps=3, snapshots=(0,),
                  data=DataSpec.synthetic("original", size=64, batch_size=16, eval_size=16))
    return make(**{**fields, **kw})


def worker(tmp_path: Path, s: RunSpec, cache: Path, mode: str) -> subprocess.Popen:
    (tmp_path / "spec.json").write_text(s.canonical())
    (tmp_path / "worker.py").write_text(WORKER)
    flags = tmp_path / "flags"
    flags.mkdir(exist_ok=True)
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": path, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, str(tmp_path / "worker.py"), str(tmp_path / "spec.json"),
                             str(cache), mode, str(flags)], env=env, cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def key(s: RunSpec) -> str:
    """The entry key of `s` trained alone here (its base is a scratch init)."""
    return entry_key(s, Engine.here(), None)


def debris(cache: Path, s: RunSpec) -> list[Path]:
    return list(cache.glob(f".tmp-{key(s)}-*")) + list(cache.glob(".trash-*"))


def test_second_request_reuses_the_entry(tmp_path):
    s = spec()
    first = get_or_run(s, tmp_path)
    steps = []
    again = get_or_run(s, tmp_path, callbacks=(lambda info: steps.append(info.step),))
    assert steps == [] and again.path == first.path and again.metrics == first.metrics
    info = again.info
    assert info["key"] == s.key and info["seed"] == 0 and info["versions"]["torch"] == torch.__version__
    assert RunSpec.from_json(Path(again.path / "spec.json").read_text()) == s
    assert sorted(p.name for p in first.path.iterdir()) == [
        MARKER, "config.json", "metrics.json", "spec.json", "step-000000.safetensors", "step-000003.safetensors"]


def test_parallel_processes_train_once(tmp_path):
    s, cache = spec(steps=6), tmp_path / "cache"
    procs = [worker(tmp_path, s, cache, "normal") for _ in range(2)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    trainers = {f.name for f in (tmp_path / "flags").glob("trained-*")}
    assert len(trainers) == 1, f"expected one writer, got {trainers}"
    assert lookup(s, cache) is not None and not debris(cache, s)


def test_killed_writer_leaves_no_complete_entry(tmp_path):
    s, cache = spec(), tmp_path / "cache"
    proc = worker(tmp_path, s, cache, "hang")
    ready = tmp_path / "flags" / "ready"
    deadline = time.monotonic() + 120
    while not ready.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "worker never reached its first snapshot"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    left = debris(cache, s)
    assert len(left) == 1 and (left[0] / "step-000000.safetensors").exists()
    assert not (left[0] / MARKER).exists() and not (cache / key(s)).exists()
    assert lookup(s, cache) is None  # absent, not half-read
    result = get_or_run(s, cache)  # takes the lock the dead writer held, clears its debris
    assert not debris(cache, s) and lookup(s, cache) is not None
    assert result.steps == [0, 3] and len(result.state_dict(3)) == len(result.state_dict(0))


def test_corrupt_entry_is_caught(tmp_path):
    s = spec()
    good = get_or_run(s, tmp_path)
    snap = good.snapshot_path(3)
    original = snap.read_bytes()
    snap.write_bytes(original[:-100])  # truncated
    assert lookup(s, tmp_path) is None
    with pytest.raises(UplabError, match=r"is corrupt: step-000003.safetensors has \d+ bytes"):
        get_or_run(s, tmp_path, on_corrupt="error")
    with pytest.warns(UserWarning, match="recomputing"):
        again = get_or_run(s, tmp_path)
    assert again.snapshot_path(3).read_bytes() == original  # deterministic: the same bytes
    flipped = bytearray(original)
    flipped[-1] ^= 0xFF  # same size, different content
    snap.write_bytes(bytes(flipped))
    assert lookup(s, tmp_path) is None  # the sha256 in the marker catches it
    (again.path / MARKER).unlink()
    assert lookup(s, tmp_path) is None
    with pytest.warns(UserWarning, match="no COMPLETE marker"):
        assert get_or_run(s, tmp_path).snapshot_path(3).read_bytes() == original
    assert not debris(tmp_path, s)


def test_full_disk_is_one_line_and_leaves_nothing(tmp_path, monkeypatch):
    import harness.checkpoint.write as write

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(write, "save_file", full)  # the one safetensors writer (runner.write_snapshot)
    s = spec()
    with pytest.raises(UplabError, match="no space left writing run"):
        get_or_run(s, tmp_path)
    assert not debris(tmp_path, s) and not (tmp_path / key(s)).exists()


def test_unusable_cache_folder(tmp_path):
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(UplabError, match="cannot create cache folder"):
        get_or_run(spec(), tmp_path / "file" / "cache")


def test_equal_snapshots_are_stored_once(tmp_path, monkeypatch):
    import harness.runs.cache as cache_mod

    monkeypatch.setattr(cache_mod, "SHARE_BYTES", 0)  # the tiny snapshots here are under the real threshold
    a, b = (get_or_run(spec(seed=seed), tmp_path) for seed in (1, 2))  # one base, two data orders
    start = [r.snapshot_path(0) for r in (a, b)]
    assert start[0].stat().st_ino == start[1].stat().st_ino  # step 0 is the same base: one copy
    assert a.snapshot_path(3).stat().st_ino != b.snapshot_path(3).stat().st_ino
    original = start[0].read_bytes()

    flipped = bytearray(original)
    flipped[-1] ^= 0xFF
    start[0].write_bytes(bytes(flipped))  # a disk error in the shared copy reaches both entries
    assert lookup(spec(seed=1), tmp_path) is None and lookup(spec(seed=2), tmp_path) is None
    with pytest.warns(UserWarning, match="recomputing"):
        again = get_or_run(spec(seed=1), tmp_path)
    assert again.snapshot_path(0).read_bytes() == original  # not linked to the corrupted copy
    with pytest.warns(UserWarning, match="recomputing"):
        other = get_or_run(spec(seed=2), tmp_path)
    assert other.snapshot_path(0).stat().st_ino == again.snapshot_path(0).stat().st_ino

    ends = [r.snapshot_path(3).stat().st_ino for r in (again, other)]
    for r in (again, other):
        cache_mod._remove(r.path, tmp_path)
    third = get_or_run(spec(seed=3), tmp_path)  # the next commit drops copies no entry links to
    left = {b.stat().st_ino for b in (tmp_path / cache_mod.BLOBS).iterdir()}
    assert left == {third.snapshot_path(0).stat().st_ino, third.snapshot_path(3).stat().st_ino}
    assert not left & set(ends)
