"""The `uplab` plan, strategy, tiny and upscale subcommands: output, exit codes, bad input (§11).

Most tests call `harness.cli.main` in-process; two run `python -m harness.cli` in subprocesses
(started with the module, in the background) to prove that bad input never shows a traceback.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from seed_configs import DIAGRAM_39B, SEED_39B, SEED_PROPOSED

# Imported at collection on purpose: _common.report_findings binds sys.stderr when imported (see
# test_findings_go_to_the_current_stderr). Imported inside a test, it would bind that test's capsys
# stream, closed afterwards, and crash every later test instead of failing only the stderr ones.
import harness.commands.plan  # noqa: F401
import harness.commands.upscale  # noqa: F401
from harness import tiny
from harness.checkpoint import INDEX, ShardWriter
from harness.cli import main
from harness.lint import lint
from harness.plan import parse_plan

SPEC = tiny.TinySpec(num_layers=4, hidden=32, intermediate=64)


def write_config(path: Path, *ranges, model: str = "base") -> Path:
    """A passthrough config; a range given as (a, b, "dup") gets the zeroed o_proj/down_proj."""
    lines = ["merge_method: passthrough", "slices:"]
    for r in ranges:
        lines += ["  - sources:", f"      - model: {model}", f"        layer_range: [{r[0]}, {r[1]}]"]
        if len(r) > 2:
            lines += ["        parameters:", "          scale:",
                      "            - {filter: o_proj, value: 0.0}",
                      "            - {filter: down_proj, value: 0.0}",
                      "            - {value: 1.0}"]
    path.write_text("\n".join(lines) + "\n")
    return path


def one_error_line(err: str, command: str) -> str:
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"uplab {command}: error: "), err
    return lines[0]


def nothing_written(out: Path) -> None:
    assert not out.exists(), sorted(p.name for p in out.iterdir())
    assert not list(out.parent.glob(f".{out.name}.*")), "a staging directory was left behind"


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    """A 4-layer tiny mistral checkpoint (hidden 32) to upscale."""
    return tiny.save(SPEC, 0, tmp_path_factory.mktemp("src") / "tiny4")


@pytest.fixture(scope="module")
def upscale_cfg(tmp_path_factory) -> Path:
    # originals 0-2, zeroed copies of 1-2, original 3: 000XX0
    return write_config(tmp_path_factory.mktemp("cfg") / "up.yml", (0, 3), (1, 3, "dup"), (3, 4))


# -- help --------------------------------------------------------------------------------------

HELP = [
    (["plan"], ["--num-layers", "--model-type", "--source", "--no-table", "--strict"]),
    (["strategy"], ["contiguous", "interleaved", "block", "single", "every"]),
    (["strategy", "contiguous"], ["--start", "--end", "--copies", "--num-layers", "--model", "--output"]),
    (["strategy", "interleaved"], ["--start", "--end", "--copies", "--num-layers"]),
    (["strategy", "block"], ["--k", "--start", "--end", "--copies"]),
    (["strategy", "single"], ["--layer", "--copies", "--num-layers"]),
    (["strategy", "every"], ["--n", "--num-layers"]),
    (["tiny"], ["--preset", "--layers", "--hidden", "--seed", "--force"]),
    (["upscale"], ["--engine", "--source", "--max-shard-size", "--force", "--quiet"]),
]


@pytest.mark.parametrize("argv, options", HELP, ids=[" ".join(argv) for argv, _ in HELP])
def test_help(capsys, argv, options):
    with pytest.raises(SystemExit) as info:
        main([*argv, "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: uplab " + " ".join(argv))
    for option in options:
        assert option in out, option


def test_top_level_help_lists_the_subcommands(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    for name in ("plan", "strategy", "tiny", "upscale"):
        assert name in out


# -- plan ------------------------------------------------------------------------------------------

def test_plan_prints_the_layer_map(capsys):
    assert main(["plan", str(SEED_39B), "--num-layers", "55"]) == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert lines[0] == "55 source layers -> 99 output layers (55 orig, 44 dup; 44.4% duplicated)"
    assert lines[1] == DIAGRAM_39B
    assert "source: [x1 0-18: 34.5%]  [x3 19-40: 40.0%]  [x1 41-54: 25.5%]" in lines
    assert any(line.split() == ["41", "19", "dup", "1", "o_proj=0,", "down_proj=0"] for line in lines)
    assert err == ""


def test_plan_no_table(capsys):
    assert main(["plan", str(SEED_39B), "--num-layers", "55", "--no-table"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 4


def test_plan_warnings_exit_0_and_strict_exit_1(capsys):
    assert main(["plan", str(SEED_PROPOSED), "--num-layers", "56"]) == 0
    assert capsys.readouterr().out.splitlines()[1] == "0" * 32
    assert main(["plan", str(SEED_PROPOSED), "--num-layers", "56", "--strict"]) == 1
    assert main(["plan", str(SEED_39B), "--num-layers", "55", "--strict"]) == 0


def test_plan_warnings_go_to_stderr(capsys):
    assert main(["plan", str(SEED_PROPOSED), "--num-layers", "56", "--no-table"]) == 0
    out, err = capsys.readouterr()
    assert "warning" not in out
    assert err.count("warning: [empty-range]") == 6
    assert "warning: [layer-dropped] source layers 18-40, 55" in err


def test_plan_lint_error_exits_1(capsys):
    assert main(["plan", str(SEED_39B), "--num-layers", "54"]) == 1
    assert capsys.readouterr().out == ""  # no layer map for a plan that cannot be built


def test_plan_lint_error_is_reported_on_stderr(capsys):
    assert main(["plan", str(SEED_39B), "--num-layers", "54"]) == 1
    err = capsys.readouterr().err
    assert "error: [range-past-end] slice 3 layer_range [41, 55]" in err
    assert "Traceback" not in err


def test_findings_go_to_the_current_stderr(capsys):
    """In-process callers (pytest's capsys, contextlib.redirect_stderr) must see the findings."""
    from harness.commands._common import report_findings
    from harness.lint import Finding

    report_findings([Finding("warning", "empty-range", "slice 1 is empty")])
    assert capsys.readouterr().err == "warning: [empty-range] slice 1 is empty\n"


@pytest.mark.parametrize("kind", ["missing", "directory", "malformed", "unknown-method",
                                  "non-numeric-scale"])
def test_plan_unreadable_input_exits_2(capsys, tmp_path, kind):
    path = tmp_path / "cfg.yml"
    if kind == "directory":
        path.mkdir()
    elif kind == "malformed":
        path.write_text("merge_method: passthrough\nslices: [\n")
    elif kind == "unknown-method":
        path.write_text("merge_method: frankenmerge\nslices:\n  - sources:\n      - model: m\n"
                        "        layer_range: [0, 2]\n")
    elif kind == "non-numeric-scale":
        path.write_text("merge_method: passthrough\nslices:\n  - sources:\n      - model: m\n"
                        "        layer_range: [0, 2]\n        parameters: {scale: zero}\n")
    assert main(["plan", str(path), "--num-layers", "4"]) == 2
    out, err = capsys.readouterr()
    line = one_error_line(err, "plan")
    assert str(path) in line
    assert out == ""


def test_plan_needs_the_depth_of_a_non_local_model(capsys):
    assert main(["plan", str(SEED_39B)]) == 2
    line = one_error_line(capsys.readouterr().err, "plan")
    assert "--num-layers" in line and "unsloth/Mistral-Small-Instruct-2409" in line


def test_plan_reads_the_depth_from_a_local_source(capsys, source, upscale_cfg):
    assert main(["plan", str(upscale_cfg), "--source", str(source), "--no-table"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[:2] == [
        "4 source layers -> 6 output layers (4 orig, 2 dup; 33.3% duplicated)", "000XX0"]


def test_plan_rejects_a_bad_flag(capsys):
    with pytest.raises(SystemExit) as info:
        main(["plan", str(SEED_39B), "--num-layers", "0"])
    assert info.value.code == 2
    assert "--num-layers" in capsys.readouterr().err


HEAVY = ("torch", "transformers", "peft", "mergekit")
IMPORTS_AFTER = (  # runs `uplab ARGV` in a fresh interpreter, then names the heavy modules it imported
    "import sys\nfrom harness.cli import main\n"
    "try:\n    code = main(sys.argv[1:])\nexcept SystemExit as e:\n    code = e.code\n"
    f"print('HEAVY', sorted(m for m in {HEAVY!r} if m in sys.modules), 'EXIT', code, file=sys.stderr)\n"
)


@pytest.mark.parametrize("argv", [["plan", str(SEED_39B), "--num-layers", "56"], ["--help"]],
                         ids=["plan", "help"])
def test_plan_and_help_import_no_heavy_module(argv):
    """The guard of "`uplab plan` and `uplab --help` answer in under a second": neither imports
    torch, transformers, peft or mergekit (seconds of imports); the wall time is not asserted."""
    root = Path(__file__).resolve().parents[1]
    r = subprocess.run([sys.executable, "-c", IMPORTS_AFTER, *argv], capture_output=True, text=True,
                       timeout=120, cwd=root, env={**os.environ, "PYTHONPATH": str(root)})
    assert "HEAVY [] EXIT 0" in r.stderr, r.stderr[-2000:]
    first = "56 source layers -> 99 output layers" if argv[0] == "plan" else "usage: uplab"
    assert r.stdout.startswith(first)


# -- strategy --------------------------------------------------------------------------------------

STRATEGY_ARGS = {
    "contiguous": (["--start", "19", "--end", "41", "--num-layers", "55"],
                   [(0, 41), (19, 41), (19, 41), (41, 55)]),
    "interleaved": (["--start", "1", "--end", "3", "--num-layers", "4", "--copies", "1"],
                    [(0, 2), (1, 2), (2, 3), (2, 3), (3, 4)]),
    "block": (["--k", "2", "--start", "0", "--end", "4", "--num-layers", "4"],
              [(0, 2), (0, 2), (2, 4), (2, 4)]),
    "single": (["--layer", "0", "--num-layers", "3", "--copies", "2"], [(0, 1), (0, 1), (0, 1), (1, 3)]),
    "every": (["--n", "2", "--num-layers", "4"], [(0, 2), (1, 2), (2, 4), (3, 4)]),
}


@pytest.mark.parametrize("kind", STRATEGY_ARGS)
def test_strategy_prints_yaml_that_parses(capsys, kind):
    args, ranges = STRATEGY_ARGS[kind]
    assert main(["strategy", kind, *args, "--model", "/models/base"]) == 0
    out = capsys.readouterr().out
    plan = parse_plan(out)
    assert plan.ranges() == ranges
    assert plan.source_model == "/models/base"
    depth = int(args[args.index("--num-layers") + 1])
    assert lint(plan, depth) == []


def test_strategy_contiguous_matches_the_seed(capsys):
    assert main(["strategy", "contiguous", "--start", "19", "--end", "41", "--num-layers", "55"]) == 0
    plan = parse_plan(capsys.readouterr().out)
    seed = parse_plan(SEED_39B.read_text())
    assert plan.layer_map(55) == seed.layer_map(55)


def test_strategy_writes_to_a_file(capsys, tmp_path):
    out = tmp_path / "every.yml"
    assert main(["strategy", "every", "--n", "2", "--num-layers", "4", "-o", str(out)]) == 0
    assert capsys.readouterr().out == ""
    assert parse_plan(out.read_text()).ranges() == STRATEGY_ARGS["every"][1]


@pytest.mark.parametrize("args, words", [
    (["contiguous", "--start", "5", "--end", "3", "--num-layers", "8"], ["[5, 3)"]),
    (["contiguous", "--start", "2", "--end", "9", "--num-layers", "8"], ["num_layers (8)"]),
    (["single", "--layer", "8", "--num-layers", "8"], ["[8, 9)"]),
    (["every", "--n", "9", "--num-layers", "8"], ["every(n)"]),
], ids=["reversed", "past-end", "single-past-end", "every-too-big"])
def test_strategy_bad_arguments_exit_2(capsys, args, words):
    assert main(["strategy", *args]) == 2
    out, err = capsys.readouterr()
    line = one_error_line(err, "strategy")
    for w in words:
        assert w in line
    assert out == ""


def test_strategy_negative_start_names_the_value_given(capsys):
    with pytest.raises(SystemExit) as info:
        main(["strategy", "contiguous", "--start", "-1", "--end", "3", "--num-layers", "8"])
    assert info.value.code == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert "--start" in last
    assert "-1" in last, f"the message should quote the value given: {last!r}"


# -- tiny ------------------------------------------------------------------------------------------

def test_tiny_writes_a_loadable_checkpoint(capsys, tmp_path):
    from transformers import AutoModelForCausalLM

    out = tmp_path / "t"
    assert main(["tiny", str(out), "--layers", "3", "--hidden", "32", "--seed", "7"]) == 0
    assert capsys.readouterr().out.startswith(f"wrote {out} (mistral, 3 layers, ")
    model = AutoModelForCausalLM.from_pretrained(out)
    assert model.config.num_hidden_layers == 3 and model.config.hidden_size == 32
    assert json.loads((out / "uplab_tiny.json").read_text())["seed"] == 7
    reference = tiny.build(tiny.TinySpec(num_layers=3, hidden=32, intermediate=64), 7)
    for (name, p), (_, q) in zip(model.state_dict().items(), reference.state_dict().items()):
        assert torch.equal(p, q), name
    assert not list(tmp_path.glob(".t.*"))


def test_tiny_refuses_a_non_empty_out(capsys, tmp_path):
    out = tmp_path / "t"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    assert main(["tiny", str(out), "--layers", "2", "--hidden", "32"]) == 2
    assert "--force" in one_error_line(capsys.readouterr().err, "tiny")
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    assert not list(tmp_path.glob(".t.*"))


def test_tiny_bad_shape_writes_nothing(capsys, tmp_path):
    out = tmp_path / "t"
    assert main(["tiny", str(out), "--layers", "2", "--hidden", "30"]) == 2
    assert "hidden" in one_error_line(capsys.readouterr().err, "tiny")
    nothing_written(out)


# -- upscale ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("engine", ["native", "mergekit"])
def test_upscale_writes_a_loadable_model(capsys, monkeypatch, tmp_path, source, upscale_cfg, engine):
    from transformers import AutoModelForCausalLM

    import harness.build.native
    import harness.build.reference

    ran = []
    for module, name in [(harness.build.native, "native"), (harness.build.reference, "mergekit")]:
        def spy(*args, _build=module.upscale_checkpoint, _name=name, **kwargs):
            ran.append(_name)
            return _build(*args, **kwargs)
        monkeypatch.setattr(module, "upscale_checkpoint", spy)
    out = tmp_path / "up"
    argv = ["upscale", str(upscale_cfg), str(out), "--source", str(source), "--engine", engine, "--quiet"]
    assert main(argv) == 0
    stdout = capsys.readouterr().out
    assert "000XX0" in stdout and f"wrote {out} ({engine})" in stdout
    assert ran == [engine]
    assert json.loads((out / "config.json").read_text())["num_hidden_layers"] == 6
    model = AutoModelForCausalLM.from_pretrained(out)
    assert model.config.num_hidden_layers == 6
    base = load_file(source / "model.safetensors")
    state = model.state_dict()
    # output 3 is the zeroed copy of source layer 1
    for inner in ("self_attn.q_proj.weight", "mlp.up_proj.weight", "input_layernorm.weight"):
        assert torch.equal(state[f"model.layers.3.{inner}"], base[f"model.layers.1.{inner}"]), inner
    for inner in ("self_attn.o_proj.weight", "mlp.down_proj.weight"):
        assert not state[f"model.layers.3.{inner}"].any(), inner
        assert torch.equal(state[f"model.layers.1.{inner}"], base[f"model.layers.1.{inner}"]), inner
    assert torch.equal(state["model.layers.5.mlp.down_proj.weight"], base["model.layers.3.mlp.down_proj.weight"])
    assert not list(tmp_path.glob(".up.*"))


def _sharded_source(root: Path, source: Path, drop_shard: bool) -> Path:
    """A copy of `source` written as several safetensors shards with an index."""
    out = root / "sharded"
    out.mkdir()
    (out / "config.json").write_text((source / "config.json").read_text())
    writer = ShardWriter(out, max_shard_bytes=40_000)
    for name, tensor in load_file(source / "model.safetensors").items():
        writer.add(name, tensor)
    writer.close()
    shards = sorted(set(json.loads((out / INDEX).read_text())["weight_map"].values()))
    assert len(shards) > 1
    if drop_shard:
        (out / shards[-1]).unlink()
    return out


def _bad_upscale(kind: str, tmp_path: Path, source: Path, cfg: Path) -> tuple[list[str], str]:
    """argv (after `upscale CONFIG OUT`) and a word the error line must contain."""
    if kind == "source-not-local":
        nowhere = tmp_path / "not-downloaded" / "Mistral-Small"
        write_config(cfg, (0, 2), (1, 2, "dup"), (2, 4), model=str(nowhere))
        return [], str(nowhere)
    if kind == "lint-error":
        write_config(cfg, (0, 3), (2, 5, "dup"))
        return ["--source", str(source)], "[2, 5]"
    write_config(cfg, (0, 3), (1, 3, "dup"), (3, 4))
    if kind == "no-config-json":
        bare = tmp_path / "weights-only"
        bare.mkdir()
        (bare / "model.safetensors").write_bytes((source / "model.safetensors").read_bytes())
        return ["--source", str(bare)], "config.json"
    if kind.startswith("missing-shard"):
        engine = kind.rsplit("-", 1)[1]
        sharded = _sharded_source(tmp_path, source, drop_shard=True)
        return ["--source", str(sharded), "--engine", engine], "model-0000"
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["source-not-local", "lint-error", "no-config-json",
                                  "missing-shard-native", "missing-shard-mergekit"])
def test_upscale_bad_input_exits_2_and_writes_nothing(capsys, tmp_path, source, kind):
    cfg = tmp_path / "cfg.yml"
    extra, word = _bad_upscale(kind, tmp_path, source, cfg)
    out = tmp_path / "out" / "up"
    assert main(["upscale", str(cfg), str(out), *extra, "--quiet"]) == 2
    stdout, err = capsys.readouterr()
    assert word in one_error_line(err, "upscale")
    assert stdout == ""
    nothing_written(out)


def test_upscale_refuses_a_non_empty_out(capsys, tmp_path, source, upscale_cfg):
    out = tmp_path / "up"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    assert main(["upscale", str(upscale_cfg), str(out), "--source", str(source), "--quiet"]) == 2
    assert "--force" in one_error_line(capsys.readouterr().err, "upscale")
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    assert not list(tmp_path.glob(".up.*"))
    # --force replaces only an earlier uplab output: this folder is the user's
    assert main(["upscale", str(upscale_cfg), str(out), "--source", str(source), "--quiet",
                 "--force"]) == 2
    assert "not an earlier uplab output" in one_error_line(capsys.readouterr().err, "upscale")
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    # an earlier build is replaced with the complete new one
    built = tmp_path / "built"
    assert main(["upscale", str(upscale_cfg), str(built), "--source", str(source), "--quiet"]) == 0
    (built / "stale.txt").write_text("from the earlier build")
    assert main(["upscale", str(upscale_cfg), str(built), "--source", str(source), "--quiet",
                 "--force"]) == 0
    assert not (built / "stale.txt").exists() and (built / "config.json").is_file()
    assert not list(tmp_path.glob(".built.*"))


def test_upscale_from_a_sharded_source(capsys, tmp_path, source, upscale_cfg):
    sharded = _sharded_source(tmp_path, source, drop_shard=False)
    out = tmp_path / "up"
    assert main(["upscale", str(upscale_cfg), str(out), "--source", str(sharded), "--quiet",
                 "--max-shard-size", "60KB"]) == 0
    index = json.loads((out / INDEX).read_text())
    assert len(set(index["weight_map"].values())) > 1
    assert "model.layers.5.mlp.down_proj.weight" in index["weight_map"]


# -- the same, in a real process: no traceback ------------------------------------------------------

@pytest.fixture(scope="module", autouse=True)
def processes(tmp_path_factory, source):
    """Three `python -m harness.cli` runs with bad input. Started when the module starts (autouse),
    so that their imports overlap the in-process tests; the last tests wait for them."""
    root = tmp_path_factory.mktemp("proc")
    malformed = root / "bad.yml"
    malformed.write_text("merge_method: passthrough\nslices:\n - sources:\n   - model: m\n"
                         "  layer_range: [0, 1]\n")
    sharded = _sharded_source(root, source, drop_shard=True)
    cfg = write_config(root / "up.yml", (0, 3), (1, 3, "dup"), (3, 4))
    past = write_config(root / "past.yml", (0, 3), (2, 5, "dup"))
    runs = {
        "plan": ["plan", str(malformed), "--num-layers", "4"],
        "upscale": ["upscale", str(cfg), str(root / "out"), "--source", str(sharded), "--quiet"],
        "lint": ["upscale", str(past), str(root / "out-lint"), "--source", str(source), "--quiet"],
    }
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}

    def run(argv: list[str]) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "harness.cli", *argv], capture_output=True,
                              text=True, cwd=root, env=env, timeout=300)

    with ThreadPoolExecutor(len(runs)) as pool:
        futures = {key: pool.submit(run, argv) for key, argv in runs.items()}
        yield root, lambda key: futures[key].result()


def test_process_malformed_yaml(processes):
    root, result = processes
    r = result("plan")
    assert r.returncode == 2, r.stderr
    line = one_error_line(r.stderr, "plan")
    assert "malformed YAML at line 5" in line
    assert r.stdout == ""


def test_process_upscale_missing_shard(processes):
    root, result = processes
    r = result("upscale")
    assert r.returncode == 2, r.stderr
    assert "named in model.safetensors.index.json is missing" in one_error_line(r.stderr, "upscale")
    nothing_written(root / "out")


def test_process_upscale_lint_error_is_one_line(processes):
    """A plan error stops the build with one line, not the finding and then the same message again."""
    root, result = processes
    r = result("lint")
    assert r.returncode == 2, r.stderr
    assert "layer_range [2, 5] reaches past the source's 4 layers" in one_error_line(r.stderr, "upscale")
    nothing_written(root / "out-lint")
