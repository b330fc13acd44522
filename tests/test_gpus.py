"""One GPU per xdist worker (fixtures/gpus.py): the assignment, CUDA_VISIBLE_DEVICES parsing,
discovery without CUDA, and the hooks end to end with `pytester` and real xdist workers, faking
the controller's GPUs with CUDA_VISIBLE_DEVICES or a stand-in `nvidia-smi`."""

from __future__ import annotations

import json
import os
import stat
import sys
import types
from pathlib import Path

import pytest

from fixtures import gpus

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[1]


# -- the pure parts -----------------------------------------------------------------------------

@pytest.mark.parametrize("visible, workers, expected", [
    (["0", "1"], 2, ["0", "1"]),
    (["3", "5"], 5, ["3", "5", "3", "5", "3"]),  # more workers than GPUs: share, in turn
    (["0", "1", "2", "3"], 2, ["0", "1"]),
    (["GPU-aa11", "GPU-bb22"], 3, ["GPU-aa11", "GPU-bb22", "GPU-aa11"]),
    ([], 3, [None, None, None]),
])
def test_assign_round_robin(visible, workers, expected):
    assert [gpus.assign(k, visible) for k in range(workers)] == expected


@pytest.mark.parametrize("value, expected", [
    ("", []),
    ("-1", []),
    ("0,1", ["0", "1"]),
    (" 2, 07 ", ["2", "7"]),
    ("GPU-5f1c2b0e-aaaa,GPU-77d0c1e2-bbbb", ["GPU-5f1c2b0e-aaaa", "GPU-77d0c1e2-bbbb"]),
    ("MIG-0b1e", ["MIG-0b1e"]),
    ("0,-1,1", ["0"]),  # CUDA stops at the first invalid entry
    ("1,1", []),  # and hides everything when one repeats
])
def test_parse_visible(value, expected):
    assert gpus.parse_visible(value) == expected


def fake_nvidia_smi(folder: Path, gpu_count: int, exit_code: int = 0) -> Path:
    """An `nvidia-smi` that answers -L like the real one (MIG lines indented under their GPU)."""
    folder.mkdir(exist_ok=True)
    lines = [f"GPU {i}: NVIDIA H100 80GB HBM3 (UUID: GPU-{i:08d}-0000)" for i in range(gpu_count)]
    if gpu_count:
        lines.insert(1, "  MIG 1g.10gb     Device  0: (UUID: MIG-00000000-0000)")
    exe = folder / "nvidia-smi"
    quoted = " ".join(f"'{line}'" for line in lines)  # printf: a shell builtin, PATH may be bare
    exe.write_text(f"#!/bin/sh\nprintf '%s\\n' {quoted}\nexit {exit_code}\n")
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    return folder


@pytest.fixture
def no_gpu_env(monkeypatch, tmp_path):
    """Nothing visible unless a test adds it: no variable, no nvidia-smi, no NVML."""
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.delenv(gpus.OPT_OUT, raising=False)
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    monkeypatch.setattr(gpus, "_nvml_count", lambda: None)


def test_visible_devices_prefers_the_variable(no_gpu_env, monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(fake_nvidia_smi(tmp_path / "bin", 4)))
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,3")
    assert gpus.visible_devices() == ["2", "3"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")  # set but empty: no GPU, whatever is installed
    assert gpus.visible_devices() == []


def test_visible_devices_from_nvidia_smi(no_gpu_env, monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(fake_nvidia_smi(tmp_path / "bin", 3)))
    assert gpus.visible_devices() == ["0", "1", "2"]  # MIG lines are not GPUs


def test_visible_devices_falls_back_to_nvml(no_gpu_env, monkeypatch, tmp_path):
    assert gpus.visible_devices() == []
    monkeypatch.setattr(gpus, "_nvml_count", lambda: 2)
    assert gpus.visible_devices() == ["0", "1"]
    monkeypatch.setenv("PATH", str(fake_nvidia_smi(tmp_path / "bin", 3, exit_code=9)))
    assert gpus.visible_devices() == ["0", "1"]  # a failing nvidia-smi is not trusted


def test_visible_devices_does_not_import_torch(no_gpu_env, monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(fake_nvidia_smi(tmp_path / "bin", 2)))
    monkeypatch.delitem(sys.modules, "torch", raising=False)
    gpus.visible_devices()
    assert "torch" not in sys.modules


def test_worker_refuses_when_cuda_is_already_initialised(monkeypatch):
    fake_torch = types.SimpleNamespace(cuda=types.SimpleNamespace(is_initialized=lambda: True))
    monkeypatch.setitem(sys.modules, "torch", fake_torch)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    config = types.SimpleNamespace(workerinput={gpus.WORKER_KEY: "1"})
    with pytest.raises(pytest.UsageError, match="CUDA was initialised before uplab could pin"):
        gpus.pytest_configure(config)
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "0,1" and gpus.pinned_device() is None


# -- end to end: a controller and two xdist workers ---------------------------------------------

WORKER_TEST = """
import json, os
from pathlib import Path
from fixtures import gpus

def test_report_device():
    seen = {{"env": os.environ.get("CUDA_VISIBLE_DEVICES"), "pinned": gpus.pinned_device()}}
    if {with_key}:
        from harness.runs.spec import finetune, tiny_base
        seen["key"] = finetune(tiny_base(seed=3), seed=3).key
    Path({out!r}, os.environ["PYTEST_XDIST_WORKER"] + ".json").write_text(json.dumps(seen))
"""


@pytest.fixture
def xdist_project(pytester, no_gpu_env, monkeypatch, tmp_path):
    """Run a test on each of two workers (--dist each); returns {worker: what it saw}."""
    pytest.importorskip("xdist")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    out = tmp_path / "seen"
    out.mkdir()

    def run(with_key: bool = False) -> dict[str, dict]:
        pytester.makepyfile(WORKER_TEST.format(out=str(out), with_key=with_key))
        result = pytester.runpytest("-n", "2", "--dist", "each", "-p", "fixtures.gpus",
                                    "-p", "no:hypothesispytest", "-p", "no:benchmark", "-p", "no:cacheprovider")
        result.assert_outcomes(passed=2)
        return {p.stem: json.loads(p.read_text()) for p in sorted(out.glob("gw*.json"))}

    return run


def test_workers_pinned_to_the_controllers_devices(xdist_project, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,5")
    seen = xdist_project(with_key=True)
    assert {w: (s["env"], s["pinned"]) for w, s in seen.items()} == {"gw0": ("3", "3"), "gw1": ("5", "5")}
    # Pinned to different GPUs, both workers look up the same run-cache entry for the same spec.
    from harness.runs.spec import finetune, tiny_base

    assert seen["gw0"]["key"] == seen["gw1"]["key"] == finetune(tiny_base(seed=3), seed=3).key


def test_workers_pinned_from_nvidia_smi(xdist_project, monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", os.pathsep.join([str(fake_nvidia_smi(tmp_path / "bin", 2)), os.defpath]))
    seen = xdist_project()
    assert {w: s["env"] for w, s in seen.items()} == {"gw0": "0", "gw1": "1"}


def test_opt_out_leaves_every_device_visible(xdist_project, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,5")
    monkeypatch.setenv(gpus.OPT_OUT, "1")
    seen = xdist_project()
    assert {w: (s["env"], s["pinned"]) for w, s in seen.items()} == {"gw0": ("3,5", None), "gw1": ("3,5", None)}


def test_no_gpu_sets_nothing(xdist_project):
    seen = xdist_project()
    assert {w: (s["env"], s["pinned"]) for w, s in seen.items()} == {"gw0": (None, None), "gw1": (None, None)}


GPU_WORKER_TEST = """
import json, os, torch
from pathlib import Path

def test_one_device():
    seen = {{"count": torch.cuda.device_count(), "uuid": str(torch.cuda.get_device_properties(0).uuid)}}
    Path({out!r}, os.environ["PYTEST_XDIST_WORKER"] + ".json").write_text(json.dumps(seen))
"""


@pytest.mark.gpu
def test_real_gpus_one_per_worker(pytester, monkeypatch, tmp_path):
    """On a GPU machine: each worker's torch sees exactly one device, distinct ones while there
    are enough GPUs."""
    pytest.importorskip("xdist")
    monkeypatch.delenv(gpus.OPT_OUT, raising=False)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    out = tmp_path / "seen"
    out.mkdir()
    pytester.makepyfile(GPU_WORKER_TEST.format(out=str(out)))
    pytester.runpytest("-n", "2", "--dist", "each", "-p", "fixtures.gpus",
                       "-p", "no:hypothesispytest", "-p", "no:benchmark").assert_outcomes(passed=2)
    seen = [json.loads(p.read_text()) for p in sorted(out.glob("gw*.json"))]
    assert [s["count"] for s in seen] == [1, 1]
    if len(gpus.visible_devices()) >= 2:
        assert seen[0]["uuid"] != seen[1]["uuid"]


# -- a full-scale run from pinned workers: launched over the node's GPUs, one launch at a time ----

LAUNCH_TEST = """
import json, os, time
from pathlib import Path
from harness.data import DataSpec
from harness.launch import command
from harness.launch import resources as R
from harness.runs import LocalBase, finetune
from harness.train.modes import Lora

OUT = Path({out!r})

def test_full_scale_run(monkeypatch, tmp_path):
    # What torch reports in this worker: the devices CUDA_VISIBLE_DEVICES leaves it, 80 GB each
    monkeypatch.setattr(command, "visible_gpus",
                        lambda: (len(os.environ["CUDA_VISIBLE_DEVICES"].split(",")), 80.0))
    # Mistral-Small 22B, LoRA: more than one 80 GB GPU holds, four hold it
    monkeypatch.setattr(command, "spec_config", lambda spec: R.load_config({config!r})[0])
    me = os.environ["PYTEST_XDIST_WORKER"]

    def launched(spec, cache, processes, *, quiet, env, **kw):
        # Fails if the other worker's launch is running now: one multi-rank job on these GPUs
        flag = os.open(OUT / "running", os.O_CREAT | os.O_EXCL)
        time.sleep(1.0)
        os.close(flag)
        (OUT / "running").unlink()
        seen = dict(processes=processes, launch_visible=env["CUDA_VISIBLE_DEVICES"],
                    worker_visible=os.environ["CUDA_VISIBLE_DEVICES"])
        (OUT / (me + ".json")).write_text(json.dumps(seen))
        return seen

    monkeypatch.setattr(command, "run_launched", launched)
    data = DataSpec.synthetic("target", batch_size=8, max_len=512)
    spec = finetune(LocalBase(path="/base-22b"), mode=Lora(), steps=1, data=data, seed=int(me[2:]))
    assert command.get_or_launch(spec, tmp_path / "cache")["processes"] == 4
"""


def test_full_scale_launches_over_the_node_from_pinned_workers(pytester, no_gpu_env, monkeypatch, tmp_path):
    """Issue 23.1: two xdist workers, each pinned to one of the controller's four (faked) GPUs,
    each asked for a run that needs FSDP: each launches over all four, one after the other."""
    pytest.importorskip("xdist")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1,2,3")
    monkeypatch.setenv("UPLAB_GPU_LOCKS", str(tmp_path / "locks"))
    (tmp_path / "locks").mkdir()
    out = tmp_path / "seen"
    out.mkdir()
    pytester.makepyfile(LAUNCH_TEST.format(out=str(out), config=str(ROOT / "examples" / "mistral-small-22b.json")))
    result = pytester.runpytest("-n", "2", "--dist", "each", "-p", "fixtures.gpus",
                                "-p", "no:hypothesispytest", "-p", "no:benchmark", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
    seen = {p.stem: json.loads(p.read_text()) for p in sorted(out.glob("gw*.json"))}
    assert seen == {
        "gw0": {"processes": 4, "launch_visible": "0,1,2,3", "worker_visible": "0"},
        "gw1": {"processes": 4, "launch_visible": "0,1,2,3", "worker_visible": "1"},
    }


def test_gpu_locks_exclude_overlapping_sets(monkeypatch, tmp_path):
    """A launch holds every device's lock; a run in one process holds its device's."""
    from filelock import FileLock, Timeout

    from harness.launch import command

    monkeypatch.setenv(command.GPU_LOCKS, str(tmp_path))
    with command.gpu_locks(["2", "0", "1", "3"]):
        for d in "0123":
            with pytest.raises(Timeout):
                FileLock(str(tmp_path / f"uplab-gpu-{d}.lock")).acquire(timeout=0)
    with command.gpu_locks(["1"]):
        FileLock(str(tmp_path / "uplab-gpu-0.lock")).acquire(timeout=0)  # another GPU stays free
    assert gpus.NODE_ENV == command.NODE_DEVICES  # one name on both sides (not imported by fixtures)
