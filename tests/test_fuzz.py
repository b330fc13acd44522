"""The bad-input contract, fuzzed: every command, given a crafted bad input, answers within seconds
with a non-zero exit and one stderr line naming the problem, raises no traceback, and changes
nothing on disk (OUT included: nothing half-written, no stage folder left behind).

Each hypothesis example builds its own case folder (a copy of a tiny source checkpoint, then one
defect) and runs `uplab` in-process through harness.cli.main under a wall-clock alarm. Every
family draws defects that a guard must catch; `expect` is the regex its error line must match,
so removing a guard fails the family (a hang trips the alarm, a silent success exits 0, a
traceback escapes main, a lost folder changes the snapshot).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
import resource
import shutil
import signal
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from safetensors.torch import load_file, save_file

from harness.cli import main
from harness.errors import UplabError

LIMIT_S = 20  # "an answer within seconds": generous for a loaded 2-core machine
MEMORY = 4 * 2**30  # more than any case needs; a missing size guard needs far more
DEPTH = 4
# No shrinking: every case is already small, and a failing case is reported as drawn.
FUZZ = settings(max_examples=5, deadline=None, database=None, derandomize=True,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


class Hang(BaseException):
    """Raised by the alarm; a BaseException so that no `except Exception` in uplab swallows it."""


@contextlib.contextmanager
def time_limit(seconds: float):
    def alarm(signum, frame):
        raise Hang(f"no answer within {seconds} s")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def snapshot(root: Path) -> dict[str, tuple]:
    """Every path under root: kind, mode, size and content hash (symlinks: their target)."""
    out = {}
    for p in sorted(root.rglob("*")):
        rel = str(p.relative_to(root))
        if p.is_symlink():
            out[rel] = ("link", os.readlink(p))
        elif p.is_dir():
            out[rel] = ("dir", p.stat().st_mode)
        else:
            out[rel] = ("file", p.stat().st_mode, hashlib.sha256(p.read_bytes()).hexdigest())
    return out


@dataclass
class Case:
    argv: list[str]
    expect: str  # regex the one error line must match
    build: list = field(default_factory=list)  # callables (folder) -> None that make the input

    def __repr__(self) -> str:  # what hypothesis prints for a failing example
        return f"Case(argv={self.argv}, expect={self.expect!r})"


@contextlib.contextmanager
def memory_limit(extra_bytes: int):
    """Cap this process's address space at its current size plus `extra_bytes`: a missing size
    guard then fails as MemoryError instead of growing until the OOM killer picks a process on a
    shared machine."""
    vm = int(next(line for line in Path("/proc/self/status").read_text().splitlines()
                  if line.startswith("VmSize:")).split()[1]) * 1024
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (vm + extra_bytes, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def run_cli(argv: list[str], cwd: Path) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    before = Path.cwd()
    os.chdir(cwd)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), time_limit(LIMIT_S), \
                memory_limit(MEMORY):
            try:
                code = main(argv)
            except SystemExit as e:  # argparse
                code = e.code
    finally:
        os.chdir(before)
    return code, out.getvalue(), err.getvalue()


def assert_contract(case: Case, root: Path) -> None:
    folder = root / "case"
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir()
    for make in case.build:
        make(folder)
    before = snapshot(root)
    try:
        code, out, err = run_cli(case.argv, folder)
    except Hang as e:
        pytest.fail(f"{case}: {e}")
    except Exception as e:  # noqa: BLE001 - any escape is a traceback for the user
        pytest.fail(f"{case}: traceback {type(e).__name__}: {e}")
    command = case.argv[0]
    assert code not in (0, None), f"{case}: exit 0 (bad input accepted); stdout {out[-300:]!r}"
    lines = err.strip().splitlines()
    assert len(lines) == 1, f"{case}: stderr is not one line: {err!r}"
    # `uplab plan` reports lint errors as findings ("error: [code] ..."), exit 1
    prefixes = (f"uplab {command}: error: ",) + (("error: [",) if command == "plan" else ())
    assert lines[0].startswith(prefixes), f"{case}: {err!r}"
    assert "Traceback" not in err and "\x1b" not in err
    assert re.search(case.expect, lines[0]), f"{case}: {lines[0]!r} does not name the problem"
    assert snapshot(root) == before, f"{case}: files changed: {sorted(set(snapshot(root)) ^ set(before))}"


# -- inputs --------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> Path:
    """A tiny 4-layer mistral checkpoint (written once, copied into each case)."""
    path = tmp_path_factory.mktemp("pristine") / "src"
    code, _, err = run_cli(["tiny", str(path), "--layers", str(DEPTH)], path.parent)
    assert code == 0, err
    return path


def source(pristine: Path, name: str = "src"):
    def make(folder: Path) -> None:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(pristine, folder / name)
    return make


def write(name: str, text: str | bytes):
    def make(folder: Path) -> None:
        p = folder / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(text if isinstance(text, bytes) else text.encode())
    return make


def plan_yaml(*ranges, model: str = "src") -> str:
    slices = "".join(f"  - sources:\n      - model: {model}\n        layer_range: [{a}, {b}]\n"
                     for a, b in ranges)
    return "merge_method: passthrough\nslices:\n" + slices


GOOD_PLAN = plan_yaml((0, DEPTH), (DEPTH - 1, DEPTH))

ENGINES = st.sampled_from(["native", "mergekit"])


def upscale(engine: str, out: str = "out", *extra: str) -> list[str]:
    return ["upscale", "cfg.yml", out, "--source", "src", "--quiet", "--engine", engine, *extra]


def yaml_scalar(v) -> str:
    return json.dumps(v)  # JSON scalars are YAML: true, "0", 4.0, 1e+30


# plan configs: layer ranges a guard must refuse ---------------------------------------------------

RANGE_DEFECTS = ["huge", "past", "bool", "string", "float", "total"]


@st.composite
def bad_ranges(draw, kind):
    if kind == "huge":  # the layer map would grow until memory runs out
        end = 10 ** draw(st.integers(4, 40)) + draw(st.integers(0, 9))
        return [f"[0, {end}]"], r"reaches past"
    if kind == "past":  # within MAX_LAYERS but past the source's depth
        end = DEPTH + draw(st.integers(1, 4000))
        return [f"[0, {DEPTH}]", f"[0, {end}]"], r"reaches past the source's 4 layers"
    if kind == "total":  # many short slices: each fine, together past the bound
        n = draw(st.integers(1100, 1500))
        return [f"[0, {DEPTH}]"] * n, r"add up to \d+ layers"
    good = draw(st.integers(1, DEPTH))
    bad = {"bool": True, "string": str(good), "float": float(good)}[kind]
    pair = [yaml_scalar(bad), str(good)] if draw(st.booleans()) else ["0", yaml_scalar(bad)]
    return [f"[{pair[0]}, {pair[1]}]"], r"not two whole numbers"


@st.composite
def plan_cases(draw, pristine, kind):
    ranges, expect = draw(bad_ranges(kind))
    text = "merge_method: passthrough\nslices:\n" + "".join(
        f"  - sources:\n      - model: src\n        layer_range: {r}\n" for r in ranges)
    # without its guard, "total" builds a model of thousands of layers: slow, not a hang, so the
    # alarm cannot stop it inside torch or a worker pool; plan shows the missing guard at once
    commands = ["plan-source", "plan-flag"] + (["upscale", "train"] if kind != "total" else [])
    command = draw(st.sampled_from(commands))
    argv = {
        "plan-source": ["plan", "cfg.yml", "--source", "src"],
        "plan-flag": ["plan", "cfg.yml", "--num-layers", str(DEPTH)],
        "upscale": upscale(draw(ENGINES)),
        "train": ["train", "--base", "src", "--plan", "cfg.yml", "--steps", "1", "--quiet",
                  "--cache", "cache"],
    }[command]
    return Case(argv, expect, [source(pristine), write("cfg.yml", text)])


@pytest.mark.parametrize("kind", RANGE_DEFECTS)
def test_plan_configs(pristine, tmp_path, kind):
    @FUZZ
    @given(plan_cases(pristine, kind))
    def check(case):
        assert_contract(case, tmp_path)
    check()


# config.json: a depth uplab cannot read is an error, never a default -------------------------------

BAD_DEPTHS = st.sampled_from([None, "8", 4.0, 1e12, 10**12, True, -1, 0, [4], {"n": 4}, 5000])


CONFIG_DEFECTS = ["depth", "model_type", "not-object", "not-json"]


@st.composite
def config_cases(draw, pristine, kind):
    config = json.loads((pristine / "config.json").read_text())
    if kind == "depth":
        value = draw(BAD_DEPTHS)
        if value is None:
            del config["num_hidden_layers"]
        else:
            config["num_hidden_layers"] = value
        text, expect = json.dumps(config), r"config\.json.*num_hidden_layers"
    elif kind == "model_type":
        value = draw(st.sampled_from([None, "", "frobnicator", 7]))
        if value is None:
            del config["model_type"]
        else:
            config["model_type"] = value
        expect = r"not supported" if value == "frobnicator" else r"no model_type"
        text = json.dumps(config)
    elif kind == "not-object":
        text, expect = json.dumps(draw(st.sampled_from([[], "x", 4, None]))), r"config\.json"
    else:
        text, expect = draw(st.sampled_from(["{", "", "{'a': 1}", "\x00"])), r"config\.json"
    command = draw(st.sampled_from(["plan", "upscale", "train"]))
    argv = {
        "plan": ["plan", "cfg.yml", "--source", "src"],
        "upscale": upscale(draw(ENGINES)),
        "train": ["train", "--base", "src", "--steps", "1", "--quiet", "--cache", "cache"],
    }[command]
    return Case(argv, expect, [source(pristine), write("src/config.json", text),
                               write("cfg.yml", GOOD_PLAN)])


@pytest.mark.parametrize("kind", CONFIG_DEFECTS)
def test_config_json(pristine, tmp_path, kind):
    @FUZZ
    @given(config_cases(pristine, kind))
    def check(case):
        assert_contract(case, tmp_path)
    check()


# checkpoint folders: truncated, missing, non-finite, stray shards, mismatched ------------------------

def truncate(fraction: float):
    def make(folder: Path) -> None:
        p = folder / "src" / "model.safetensors"
        data = p.read_bytes()
        p.write_bytes(data[: int(len(data) * fraction)])
    return make


def bin_only(folder: Path) -> None:
    (folder / "src" / "model.safetensors").rename(folder / "src" / "pytorch_model.bin")


def poison(value: float, which: int, at: float):
    def make(folder: Path) -> None:
        p = folder / "src" / "model.safetensors"
        tensors = load_file(p)
        floats = sorted(n for n, t in tensors.items() if t.is_floating_point())
        name = floats[which % len(floats)]
        flat = tensors[name].view(-1)
        flat[int(at * (flat.numel() - 1))] = value
        save_file(tensors, p, metadata={"format": "pt"})
    return make


def stray_shard(target: str):
    def make(folder: Path) -> None:
        src = folder / "src"
        (folder / "elsewhere").mkdir()
        shutil.copy(src / "model.safetensors", folder / "elsewhere" / "model.safetensors")
        names = list(load_file(src / "model.safetensors"))
        weight_map = {n: "model.safetensors" for n in names}
        weight_map[names[0]] = target
        (src / "model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))
    return make


def missing_shard(folder: Path) -> None:
    src = folder / "src"
    names = list(load_file(src / "model.safetensors"))
    weight_map = {n: ("model-00002-of-00002.safetensors" if i % 2 else "model.safetensors")
                  for i, n in enumerate(names)}
    (src / "model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))


def deeper_config(folder: Path) -> None:
    p = folder / "src" / "config.json"
    config = json.loads(p.read_text())
    config["num_hidden_layers"] = DEPTH + 2
    p.write_text(json.dumps(config))


def negative_dims(folder: Path) -> None:
    """Negate both dimensions of one matrix in the header: the product, and so the byte span that
    the size check compares, is unchanged."""
    p = folder / "src" / "model.safetensors"
    data = p.read_bytes()
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + n])
    name = next(k for k, v in header.items() if k != "__metadata__" and len(v["shape"]) == 2)
    header[name]["shape"] = [-d for d in header[name]["shape"]]
    raw = json.dumps(header).encode()  # data offsets count from the header's end: they stay right
    p.write_bytes(len(raw).to_bytes(8, "little") + raw + data[8 + n:])


def latin1_index(folder: Path) -> None:
    (folder / "src" / "model.safetensors.index.json").write_bytes(b'{"weight_map": {"caf\xe9": "x"}}')


def no_model_type(folder: Path) -> None:
    (folder / "src" / "config.json").write_text("{}")  # was read as mistral by diff


def stray_layer(index: int):
    """One extra tensor at layer `index`: diff drew a heatmap that wide (1e11: a MemoryError)."""
    def make(folder: Path) -> None:
        p = folder / "src" / "model.safetensors"
        tensors = load_file(p)
        tensors[f"model.layers.{index}.mlp.down_proj.weight"] = torch.zeros(2, 2)
        save_file(tensors, p, metadata={"format": "pt"})
    return make


CHECKPOINT_DEFECTS = ["truncated", "bin", "nonfinite", "stray", "missing", "deeper", "negative", "latin1-index",
                      "no-model-type", "stray-layer"]


@st.composite
def checkpoint_cases(draw, pristine, kind):
    if kind == "truncated":
        defect, expect = truncate(draw(st.floats(0.0, 0.999))), r"truncated|not a safetensors|header"
    elif kind == "bin":
        defect, expect = bin_only, r"safetensors checkpoints only"
    elif kind == "nonfinite":
        defect = poison(draw(st.sampled_from([float("nan"), float("inf"), float("-inf")])),
                        draw(st.integers(0, 100)), draw(st.floats(0, 1)))
        expect = r"NaN or Inf"
    elif kind == "stray":
        target = draw(st.sampled_from(["../elsewhere/model.safetensors", "/etc/passwd",
                                       "sub/../../elsewhere/model.safetensors"]))
        defect, expect = stray_shard(target), r"not a file name inside"
    elif kind == "missing":
        defect, expect = missing_shard, r"is missing"
    elif kind == "negative":
        defect, expect = negative_dims, r"negative dimension"
    elif kind == "latin1-index":
        defect, expect = latin1_index, r"not a safetensors index"
    elif kind == "deeper":
        defect, expect = deeper_config, r"gives 6 layers but the weights hold layers 0-3"
    elif kind == "no-model-type":
        defect, expect = no_model_type, r"no model_type; cannot tell the architecture"
    else:
        defect = stray_layer(draw(st.one_of(st.integers(DEPTH, 10**5), st.just(10**11))))
        expect = r"gives 4 layers but the weights hold layers 0-\d+ \(5\)"
    commands = ["upscale", "train", "diff"]
    command = draw(st.sampled_from(commands))
    argv = {
        "upscale": upscale(draw(ENGINES)),
        "train": ["train", "--base", "src", "--steps", "1", "--quiet", "--cache", "cache"],
        "diff": ["diff", "good", "src", "--out", "out", "--quiet"],
    }[command]
    return Case(argv, expect, [source(pristine), source(pristine, "good"), defect,
                               write("cfg.yml", GOOD_PLAN)])


@pytest.mark.parametrize("kind", CHECKPOINT_DEFECTS)
def test_checkpoint_folders(pristine, tmp_path, kind):
    @FUZZ
    @given(checkpoint_cases(pristine, kind))
    def check(case):
        assert_contract(case, tmp_path)
    check()


# OUT: --force never replaces ., the working directory, a source or a folder holding one -----------

def symlink(name: str, target: str):
    def make(folder: Path) -> None:
        (folder / name).symlink_to(target)
    return make


OUT_DEFECTS = ["dot", "cwd", "parent", "source", "holds-source", "file", "link", "foreign"]


@st.composite
def out_cases(draw, pristine, kind):
    force = ["--force"] if kind in ("dot", "cwd", "parent", "source", "holds-source", "foreign") \
        else draw(st.sampled_from([[], ["--force"]]))
    build = [source(pristine), write("cfg.yml", GOOD_PLAN), write("keep/notes.txt", "mine")]
    out, src, expect = {
        "dot": (".", "src", r"working directory"),
        "cwd": ("keep/..", "src", r"working directory"),
        "parent": ("..", "src", r"working directory"),
        "source": ("src", "src", r"is the source"),
        "holds-source": ("w", "w/src", r"holds the source"),
        "file": ("keep/notes.txt", "src", r"is a file"),
        "link": ("link", "src", r"symlink"),
        "foreign": ("keep", "src", r"not an earlier uplab output"),
    }[kind]
    if kind == "holds-source":
        build.append(source(pristine, "w/src"))
    if kind == "link":
        build.append(symlink("link", "keep"))
    argv = ["upscale", "cfg.yml", out, "--source", src, "--quiet", "--engine", draw(ENGINES), *force]
    if kind in ("dot", "cwd", "file", "link", "foreign") and draw(st.booleans()):
        argv = ["tiny", out, "--layers", "2", *force]  # the other command that writes a folder
    return Case(argv, expect, build)


@pytest.mark.parametrize("kind", OUT_DEFECTS)
def test_out_is_never_lost(pristine, tmp_path, kind):
    @FUZZ
    @given(out_cases(pristine, kind))
    def check(case):
        assert_contract(case, tmp_path)
    check()


def test_strategy_output_is_not_overwritten(tmp_path):
    @FUZZ
    @given(st.binary(max_size=64), st.sampled_from(["contiguous", "interleaved"]))
    def check(content, kind):
        case = Case(["strategy", kind, "--start", "1", "--end", "3", "--num-layers", "4",
                     "-o", "mine.yml"], r"already exists.*--force", [write("mine.yml", content)])
        assert_contract(case, tmp_path)
    check()


# claims.json: mistyped fields are one line, for both report commands ------------------------------

def claim(id: str = "c", verdict: str = "supported") -> dict:
    return {"id": id, "scale": "tiny", "case": "", "expected": verdict, "statement": "s",
            "method": "m", "decision": {"verdict": verdict, "p": 0.01}}


def claims_file(claims: list[dict]) -> str:
    return json.dumps({"schema": "uplab-claims/1", "provenance": {}, "claims": claims})


CLAIM_FIELDS = ["runs", "seeds", "case", "expected", "nodeid", "effects", "id", "scale", "decision"]
WRONG = st.one_of(st.integers(), st.text(max_size=5), st.dictionaries(st.text(max_size=3), st.integers(),
                                                                      max_size=2), st.booleans())


@st.composite
def claims_cases(draw, field):
    wrong = {"runs": WRONG.filter(lambda v: not isinstance(v, list)),
             "seeds": WRONG.filter(lambda v: not isinstance(v, list)),
             "effects": WRONG.filter(lambda v: not isinstance(v, list)),
             "decision": WRONG.filter(lambda v: not isinstance(v, dict))}.get(
        field, WRONG.filter(lambda v: not isinstance(v, str)))
    value = draw(wrong)
    bad = claim()
    bad[field] = value
    good = [claim("c", draw(st.sampled_from(["supported", "refuted"])))]
    files = [write("new/claims.json", claims_file([bad, claim("d")])),
             write("old.json", claims_file(good))]
    expect = {"id": "lacks a string 'id'", "scale": "lacks a string 'id' and 'scale'",
              "decision": r"decision\.verdict"}.get(field, rf"'{field}' must be")
    return Case(["report", "new", "--compare", "old.json"], expect, files)


@pytest.mark.parametrize("field", CLAIM_FIELDS)
def test_claims_json(tmp_path, field):
    @FUZZ
    @given(claims_cases(field))
    def check(case):
        assert_contract(case, tmp_path)
    check()


# manifests (pytest --checkpoints): read through harness.runs.manifest ------------------------------

MANIFEST_DEFECTS = ["upscale-dir", "past-depth", "no-depth", "deeper-upscaled"]


@st.composite
def manifest_cases(draw, pristine, kind):
    files = [source(pristine, "base"), source(pristine, "up"), source(pristine, "snap")]
    upscale_path = "plan.yml"
    if kind == "upscale-dir":
        upscale_path, expect = "base", r"cannot read config"
        files.append(write("plan.yml", GOOD_PLAN))
    elif kind == "past-depth":
        end = DEPTH + draw(st.integers(1, 10**6))
        files.append(write("plan.yml", plan_yaml((0, DEPTH), (DEPTH - 2, end), model="base")))
        expect = r"reaches past|add up to"
    elif kind == "no-depth":
        files.append(write("plan.yml", plan_yaml((0, DEPTH), model="base")))
        config = json.loads((pristine / "config.json").read_text())
        config["num_hidden_layers"] = draw(BAD_DEPTHS.filter(lambda v: v is not None))
        files.append(write("base/config.json", json.dumps(config)))
        expect = r"num_hidden_layers"
    else:
        files.append(write("plan.yml", plan_yaml((0, DEPTH), (DEPTH - 1, DEPTH), model="base")))
        expect = r"layers but the upscale config"
    files.append(write("m.yml", f"base: base\nupscale: {upscale_path}\nupscaled: up\n"
                                "snapshots:\n  - {path: snap, epoch: 1}\n"))
    return Case(["manifest", "m.yml"], expect, files)


@pytest.mark.parametrize("kind", MANIFEST_DEFECTS)
def test_manifests(pristine, tmp_path, kind):
    from harness.runs.manifest import load_manifest

    @FUZZ
    @given(manifest_cases(pristine, kind))
    def check(case):
        folder = tmp_path / "case"
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir()
        for make in case.build:
            make(folder)
        before = snapshot(tmp_path)
        with pytest.raises(UplabError) as info, time_limit(LIMIT_S), memory_limit(MEMORY):
            load_manifest(folder / "m.yml")
        message = str(info.value)
        assert "\n" not in message and re.search(case.expect, message), (case, message)
        assert snapshot(tmp_path) == before
    check()
