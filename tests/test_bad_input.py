"""The bad-input guards that need a real process, a signal or a file mode: SIGTERM and SIGKILL
during a build, stale stages, umask modes, lazy imports, escaped terminal output, and the
explicit NaN/Inf opt-in. (tests/test_fuzz.py fuzzes the rest of the contract in-process.)"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from harness.checkpoint.output import MARKER, remove_stale_stages
from harness.cli import main

ROOT = Path(__file__).resolve().parents[1]
PLAN = ("merge_method: passthrough\nslices:\n"
        "  - sources:\n      - model: src\n        layer_range: [0, 2]\n"
        "  - sources:\n      - model: src\n        layer_range: [1, 2]\n")


@pytest.fixture(scope="module")
def src(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("src") / "src"
    assert main(["tiny", str(path), "--layers", "2"]) == 0
    return path


def make_case(folder: Path, src: Path) -> Path:
    import shutil

    folder.mkdir(parents=True, exist_ok=True)
    shutil.copytree(src, folder / "src")
    (folder / "cfg.yml").write_text(PLAN)
    return folder


@pytest.fixture()
def case(tmp_path, src) -> Path:
    return make_case(tmp_path, src)


# A build that stops at its first tensor (inside the stage) until the test signals it.
SLOW_UPSCALE = textwrap.dedent("""
    import sys, time
    import harness.checkpoint.write as w
    add = w.ShardWriter.add
    def slow(self, *a, **k):
        end = time.monotonic() + 600
        while time.monotonic() < end:
            time.sleep(0.05)
        return add(self, *a, **k)
    w.ShardWriter.add = slow
    from harness.cli import main
    sys.exit(main(["upscale", "cfg.yml", "out", "--source", "src", "--quiet"]))
""")
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}


def start(folder: Path, argv: list[str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, *argv], cwd=folder, env=ENV, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


@pytest.fixture(scope="module")
def processes(tmp_path_factory, src):
    """Every process this module needs, started at once so that their imports overlap."""
    root = tmp_path_factory.mktemp("proc")
    folders = {k: make_case(root / k, src) for k in ("term", "kill", "plan", "upscale")}
    (folders["plan"] / "huge.yml").write_text(PLAN.replace("[1, 2]", "[1, 99999999999999999999999]"))
    weights = folders["upscale"] / "src" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-1000])
    procs = {
        "term": start(folders["term"], ["-c", SLOW_UPSCALE]),
        "kill": start(folders["kill"], ["-c", SLOW_UPSCALE]),
        "plan": start(folders["plan"], ["-m", "harness.cli", "plan", "huge.yml", "--source", "src"]),
        "upscale": start(folders["upscale"], ["-m", "harness.cli", "upscale", "cfg.yml", "out",
                                              "--source", "src"]),
    }
    yield {k: (folders[k], procs[k]) for k in procs}
    for p in procs.values():
        if p.poll() is None:
            p.kill()
            p.wait()


def stages(folder: Path) -> list[Path]:
    return sorted(folder.glob(".out.uplab-stage.*"))


def wait_for_stage(proc: subprocess.Popen, folder: Path, timeout: float = 300) -> Path:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        found = stages(folder)  # the SIGTERM handler is installed before the stage exists
        if found:
            return found[0]
        if proc.poll() is not None:
            pytest.fail(f"the build ended before its stage was seen: {proc.communicate()}")
        time.sleep(0.01)
    proc.kill()
    pytest.fail("no stage folder appeared")


def test_sigterm_removes_the_stage(processes):
    folder, proc = processes["term"]
    wait_for_stage(proc, folder)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err
    assert err.strip().splitlines() == ["uplab upscale: terminated (SIGTERM); OUT was not written"]
    assert stages(folder) == [] and not (folder / "out").exists()


def test_sigterm_inside_mkdtemp_leaves_no_stage(tmp_path, monkeypatch):
    """SIGTERM after the stage's mkdir but before mkdtemp returns (seen once in CI under load):
    the stage exists but no variable names it; cleanup must still find it."""
    from harness.checkpoint import output

    made = output._stage_dir

    def interrupted(target, kind):
        made(target, kind)
        raise output.Terminated()

    monkeypatch.setattr(output, "_stage_dir", interrupted)
    with pytest.raises(output.Terminated):
        with output.staged_output(tmp_path / "out"):
            pass
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_a_sigkilled_stage_is_removed_by_the_next_build(processes):
    folder, proc = processes["kill"]
    stage = wait_for_stage(proc, folder)
    proc.kill()  # SIGKILL: nothing in the process can clean up
    proc.wait(timeout=120)
    assert stage.is_dir()
    assert main(["upscale", str(folder / "cfg.yml"), str(folder / "out"), "--source",
                 str(folder / "src"), "--quiet"]) == 0
    assert stages(folder) == [] and (folder / "out" / "config.json").is_file()


def test_stages_of_live_processes_are_kept(tmp_path):
    from harness.checkpoint.output import _host

    host = _host()
    live = tmp_path / f".out.uplab-stage.{host}.{os.getpid()}.abc"
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    dead = tmp_path / f".other.uplab-stage.{host}.{proc.pid}.xyz"
    old = tmp_path / f".out.uplab-old.{host}.{proc.pid}.q"
    elsewhere = tmp_path / f".out.uplab-stage.not-{host}.{proc.pid}.xyz"  # another machine's
    user = tmp_path / ".out.stage.123.abc"  # not uplab's name: never touched
    for d in (live, dead, old, elsewhere, user):
        d.mkdir()
    assert sorted(remove_stale_stages(tmp_path)) == sorted([dead, old])
    assert live.is_dir() and user.is_dir() and elsewhere.is_dir()


@pytest.mark.parametrize("mask", [0o022, 0o027])
def test_outputs_follow_the_umask(case, mask):
    before = os.umask(mask)
    try:
        assert main(["upscale", str(case / "cfg.yml"), str(case / "out"), "--source",
                     str(case / "src"), "--quiet"]) == 0
        assert main(["strategy", "single", "--layer", "0", "--num-layers", "2",
                     "-o", str(case / "s.yml")]) == 0
    finally:
        os.umask(before)
    out = case / "out"
    assert out.stat().st_mode & 0o777 == 0o777 & ~mask
    for p in [*out.iterdir(), case / "s.yml"]:
        assert p.stat().st_mode & 0o777 == 0o666 & ~mask, p
    assert (out / MARKER).is_file()


def test_help_and_argument_errors_import_no_heavy_module():
    code = ("import sys\nfrom harness.cli import main\n"
            "for argv in (['--help'], ['plan', 'x.yml', '--num-layers', '99999']):\n"
            "    try:\n        main(argv)\n    except SystemExit:\n        pass\n"
            "heavy = sorted(m for m in ('torch', 'transformers', 'mergekit', 'peft', 'safetensors')"
            " if m in sys.modules)\nprint('HEAVY', heavy, file=sys.stderr)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                       env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert "HEAVY []" in r.stderr, r.stderr
    assert "expected at most 4096 layers, got 99999" in r.stderr


def test_compare_escapes_terminal_control_characters(tmp_path, capsys):
    def claims(verdict: str) -> str:
        c = {"id": "evil\x1b[2J\x1b]0;owned\x07id", "scale": "tiny\r", "case": "a\nb",
             "decision": {"verdict": verdict}}
        return json.dumps({"schema": "uplab-claims/1", "claims": [c]})

    (tmp_path / "old.json").write_text(claims("supported"))
    (tmp_path / "new.json").write_text(claims("refuted"))
    assert main(["report", str(tmp_path / "new.json"), "--compare", str(tmp_path / "old.json")]) == 1
    out = capsys.readouterr().out
    assert not any(c in out for c in "\x1b\x07\r"), repr(out)
    assert "evil\\x1b[2J" in out and "a\\nb" in out


def test_error_lines_escape_terminal_control_characters(tmp_path, capsys):
    cfg = tmp_path / "x\x1b[31m.yml"
    assert main(["plan", str(cfg), "--num-layers", "4"]) == 2
    err = capsys.readouterr().err
    assert "\x1b" not in err and "x\\x1b[31m.yml" in err and err.count("\n") == 1


def test_nonfinite_weights_are_copied_only_when_allowed(case, capsys):
    weights = case / "src" / "model.safetensors"
    tensors = load_file(weights)
    name = next(n for n in sorted(tensors) if "o_proj" in n)
    tensors[name][0, 0] = float("nan")
    save_file(tensors, weights, metadata={"format": "pt"})
    argv = [str(case / "cfg.yml"), str(case / "out"), "--source", str(case / "src"), "--quiet"]
    for engine in ("native", "mergekit"):
        assert main(["upscale", *argv, "--engine", engine]) == 2
        assert "NaN or Inf" in capsys.readouterr().err and not (case / "out").exists()
    assert main(["upscale", *argv, "--allow-nonfinite"]) == 0
    out = load_file(case / "out" / "model.safetensors")
    assert torch.isnan(out[name]).any()


@pytest.mark.parametrize("key, problem", [("plan", "reaches past layer 4096"),
                                          ("upscale", "truncated")])
def test_one_line_from_a_real_process(processes, key, problem):
    """The in-process fuzz test catches exceptions; this checks what a user sees from a process."""
    folder, proc = processes[key]
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 2 and "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and problem in lines[0], err
    assert not (folder / "out").exists() and not list(folder.glob(".out.*"))


@pytest.mark.parametrize("argv, problem", [
    (["plan", "x.yml", "--num-layers", "1000000000"], "at most 4096 layers"),
    (["strategy", "contiguous", "--start", "0", "--end", "2", "--num-layers", "4",
      "--copies", "1000000000"], "uplab builds at most 4096"),
    (["strategy", "every", "--n", "1", "--num-layers", "99999999999"], "at most 4096 layers"),
    (["train", "--snapshots", "0-99999999999", "--print-spec"], "more than 4096 values"),
    (["train", "--freeze", "0-99999999999", "--mode", "freeze", "--print-spec"], "more than 4096"),
    (["tiny", "t", "--layers", "1000000000"], "at most 4096 layers"),
])
def test_sizes_from_flags_are_bounded_before_any_work(tmp_path, capsys, monkeypatch, argv, problem):
    """A huge count would otherwise build a list (or a model) of that size first."""
    monkeypatch.chdir(tmp_path)
    signal.signal(signal.SIGALRM, lambda *_: pytest.fail("no answer within 20 s"))
    signal.alarm(20)
    try:
        try:
            code = main(argv)
        except SystemExit as e:
            code = e.code
    finally:
        signal.alarm(0)
    err = capsys.readouterr().err
    assert code == 2 and problem in err and err.count("\n") == 1, err
    assert list(tmp_path.iterdir()) == []


def test_pretrain_only_honours_its_flags(capsys):
    """`--pretrain-only --steps 2 --lr 0.5` trained 1200 steps at 0.003 (the flags were dropped)."""
    assert main(["train", "--pretrain-only", "--steps", "2", "--lr", "0.5", "--seed", "3",
                 "--snapshots", "0,1", "--print-spec"]) == 0
    spec = json.loads(capsys.readouterr().out)["spec"]
    assert (spec["steps"], spec["lr"], spec["seed"], spec["snapshots"]) == (2, 0.5, 3, [0, 1])
    assert spec["base"]["seed"] == 0 and spec["data"]["train"]["domain"] == "original"
    assert main(["train", "--pretrain-only", "--epochs", "2", "--print-spec"]) == 0
    spec = json.loads(capsys.readouterr().out)["spec"]
    assert (spec["steps"], spec["epochs"]) == (None, 2)


@pytest.mark.parametrize("flags", [["--plan", "x.yml"], ["--mode", "lora"], ["--batch-size", "4"],
                                   ["--data", "target"], ["--eval", "original"], ["--freeze", "0-1"]])
def test_pretrain_only_refuses_fine_tune_flags(tmp_path, capsys, monkeypatch, flags):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "x.yml").write_text(PLAN)
    assert main(["train", "--pretrain-only", *flags, "--print-spec"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{flags[0]} apply to a fine-tune" in err, err


def test_wrote_lines_escape_terminal_control_characters(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    name = "out\n\x1b[2Jx"
    assert main(["tiny", name, "--layers", "2"]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "\x1b" not in out and "out\\n\\x1b[2Jx" in out, out


def test_diff_of_other_dtypes_says_so(tmp_path, src, capsys):
    """bf16 against fp16 differs by the two roundings alone: the output says so."""
    import shutil

    for name, dtype in (("a", torch.bfloat16), ("b", torch.float16)):
        shutil.copytree(src, tmp_path / name)
        f = tmp_path / name / "model.safetensors"
        save_file({k: v.to(dtype) for k, v in load_file(f).items()}, f, metadata={"format": "pt"})
    assert main(["diff", str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(tmp_path / "d"), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "note: BASE is stored as bfloat16 and TUNED as float16: the deltas include their rounding" in out, out
    assert main(["diff", str(tmp_path / "a"), str(tmp_path / "a"), "--out", str(tmp_path / "e"), "--quiet"]) == 0
    assert "note:" not in capsys.readouterr().out


def _full_disk(*args, **kwargs):
    from safetensors import SafetensorError

    raise SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")


def _read_only(*args, **kwargs):
    import errno

    raise OSError(errno.EROFS, "Read-only file system")


# Simulated: tests run as root (chmod stops nothing) on a disk with room. The full disk is raised
# as safetensors' Rust writer raises it (measured on a 64 KiB tmpfs): a SafetensorError, no OSError.
@pytest.mark.parametrize("argv, patch, problem", [
    (["upscale", "cfg.yml", "out", "--source", "src", "--quiet", "--engine", "native"],
     ("harness.checkpoint.write.save_file", _full_disk), "cannot write * (No space left on device)"),
    (["upscale", "cfg.yml", "out", "--source", "src", "--quiet", "--engine", "native"],
     ("tempfile.mkdtemp", _read_only), "cannot write * (Read-only file system)"),
    (["tiny", "t", "--layers", "2"], ("transformers.modeling_utils.safe_save_file", _full_disk),
     "cannot write * (No space left on device)"),
    (["tiny", "t", "--layers", "2"], ("tempfile.mkdtemp", _read_only), "cannot write * (Read-only file system)"),
    (["strategy", "contiguous", "--start", "0", "--end", "1", "--num-layers", "2", "-o", "p.yml"],
     ("os.fdopen", _read_only), "cannot write p.yml (Read-only file system)"),
    (["train", "--base", "src", "--steps", "1", "--quiet", "--cache", "c"],
     ("harness.checkpoint.write.save_file", _full_disk), "no space left writing run * into c; free space"),
    (["train", "--base", "src", "--steps", "1", "--quiet", "--cache", "c"],
     ("filelock.FileLock.acquire", _read_only), "cannot write into cache folder 'c' (Read-only file system)"),
], ids=["upscale-full", "upscale-read-only", "tiny-full", "tiny-read-only", "strategy-read-only",
        "train-full", "train-read-only-cache"])
def test_full_or_read_only_targets_are_one_line(case, capsys, monkeypatch, argv, patch, problem):
    from fnmatch import fnmatch

    monkeypatch.chdir(case)
    monkeypatch.setattr(*patch)
    assert main(argv) == 2
    err = capsys.readouterr().err  # (train --base: transformers' own loading bar comes first)
    lines = [line for line in err.splitlines() if line.startswith("uplab")]
    assert len(lines) == 1 and fnmatch(lines[0], f"*{problem}*") and "Traceback" not in err, err
    assert not [p for p in case.iterdir() if p.name.startswith((".out", ".t.", ".p.yml", "out", "t", "p.yml"))]
