"""`uplab diff`: happy path (in-process and as a subprocess), --plan and fill, every bad input."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from harness.cli import main
from synthetic import write_checkpoint
from harness.plots import PNG_MAGIC
from tests.test_deltas import DUPS, ORDER, perturb, random_state, upscale_state

ROOT = Path(__file__).resolve().parents[1]
COLUMNS = ["layer", "module", "l2", "rel", "mean_abs", "cos", "fill"]
MISTRAL = {"model_type": "mistral", "num_hidden_layers": 8}
PLAN = """\
merge_method: passthrough
slices:
  - sources: [{model: base, layer_range: [0, 4]}]
  - sources:
      - model: base
        layer_range: [2, 4]
        parameters:
          scale:
            - {filter: o_proj, value: 0.0}
            - {filter: down_proj, value: 0.0}
            - {value: 1.0}
  - sources: [{model: base, layer_range: [4, 6]}]
"""


@pytest.fixture(scope="module")
def ckpts(tmp_path_factory):
    """The hand-made upscale (8 layers, sharded) and its 'fine-tune' (single file)."""
    root = tmp_path_factory.mktemp("ckpts")
    up = upscale_state(random_state(6), ORDER, DUPS)
    base = write_checkpoint(root / "base", up, shards=3, config=MISTRAL)
    tuned = write_checkpoint(root / "tuned", perturb(up, 0.02), config=MISTRAL)
    (root / "plan.yaml").write_text(PLAN)
    return root, base, tuned


def read(path: Path) -> tuple[list[str], list[dict]]:
    with open(path, newline="") as f:
        r = csv.DictReader(f)
        return list(r.fieldnames), list(r)


def test_happy_path_writes_both_files(ckpts, tmp_path, capsys):
    _, base, tuned = ckpts
    out = tmp_path / "new" / "out"
    assert main(["diff", str(base), str(tuned), "--out", str(out), "--quiet"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["deltas.csv", "heatmap.png"]
    header, rows = read(out / "deltas.csv")
    assert header == COLUMNS
    assert len(rows) == 8 * 9 + 3
    assert {r["module"] for r in rows if r["layer"] == ""} == {"embed_tokens", "norm", "lm_head"}
    assert all(r["fill"] == "" for r in rows)  # no plan, no fill
    zeroed = [r for r in rows if r["layer"] in ("4", "5") and r["module"] in ("o_proj", "down_proj")]
    assert len(zeroed) == 4 and all(r["rel"] == "" and r["cos"] == "" for r in zeroed)
    assert all(float(r["l2"]) > 0 for r in rows)
    assert (out / "heatmap.png").read_bytes().startswith(PNG_MAGIC)
    assert "wrote" in capsys.readouterr().out


def test_plan_fills_the_zeroed_duplicates(ckpts, tmp_path):
    root, base, tuned = ckpts
    out = tmp_path / "out"
    assert main(["diff", str(base), str(tuned), "--out", str(out), "--plan", str(root / "plan.yaml"),
                 "--metric", "fill", "--quiet"]) == 0
    _, rows = read(out / "deltas.csv")
    filled = {(r["layer"], r["module"]): float(r["fill"]) for r in rows if r["fill"]}
    assert set(filled) == {("4", "o_proj"), ("4", "down_proj"), ("5", "o_proj"), ("5", "down_proj")}
    assert all(0 < v < 1 for v in filled.values())  # noise of 0.02 vs weights of 0.2


def test_cli_runs_as_a_subprocess(ckpts, tmp_path):
    _, base, tuned = ckpts
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, "-m", "harness.cli", "diff", str(base), str(tuned),
                           "--out", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert read(out / "deltas.csv")[0] == COLUMNS
    assert "Traceback" not in done.stderr


# --- bad input: exit 2, one line, no traceback, nothing written ---------------------------------


def _copy(src: Path, dst: Path) -> Path:
    dst.mkdir(parents=True)
    for f in src.iterdir():
        (dst / f.name).write_bytes(f.read_bytes())
    return dst


def _mismatched_shapes(ckpts, tmp):
    sd = upscale_state(random_state(6), ORDER, DUPS)
    sd["model.layers.3.mlp.up_proj.weight"] = torch.zeros(5, 5)
    return ckpts[1], write_checkpoint(tmp / "bad", sd, config=MISTRAL), "has shape"


def _missing_shard(ckpts, tmp):
    bad = _copy(ckpts[1], tmp / "bad")
    sorted(bad.glob("model-*.safetensors"))[1].unlink()
    return bad, ckpts[2], "named in model.safetensors.index.json is missing"


def _nan_weight(ckpts, tmp):
    sd = perturb(upscale_state(random_state(6), ORDER, DUPS), 0.02)
    sd["model.layers.6.self_attn.v_proj.weight"][0, 0] = float("nan")
    return ckpts[1], write_checkpoint(tmp / "bad", sd, config=MISTRAL), "has NaN or Inf"


def _missing_dir(ckpts, tmp):
    return ckpts[1], tmp / "nowhere", "not a checkpoint directory"


def _other_architecture(ckpts, tmp):
    bad = _copy(ckpts[2], tmp / "bad")
    (bad / "config.json").write_text(json.dumps({**MISTRAL, "model_type": "llama"}))
    return ckpts[1], bad, "is a mistral model but"


def _wrong_plan(ckpts, tmp):
    (tmp / "plan.yaml").write_text(PLAN.replace("[4, 6]", "[4, 7]"))
    return ckpts[1], ckpts[2], "layer map has 9 layers", ["--plan", str(tmp / "plan.yaml")]


def _fill_without_plan(ckpts, tmp):
    return ckpts[1], ckpts[2], "--metric fill needs --plan", ["--metric", "fill"]


BAD = [_mismatched_shapes, _missing_shard, _nan_weight, _missing_dir, _other_architecture,
       _wrong_plan, _fill_without_plan]


@pytest.mark.parametrize("case", BAD, ids=lambda f: f.__name__.strip("_"))
@pytest.mark.parametrize("out_exists", [False, True], ids=["new-dir", "existing-dir"])
def test_bad_input_is_one_line_and_leaves_nothing(ckpts, tmp_path, capsys, case, out_exists):
    base, tuned, message, *extra = case(ckpts, tmp_path)
    out = tmp_path / "out"
    if out_exists:
        out.mkdir()
        (out / "keep.txt").write_text("mine")
    code = main(["diff", str(base), str(tuned), "--out", str(out), "--quiet", *(extra[0] if extra else [])])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("uplab diff: error: "), err
    assert message in err and "Traceback" not in err
    if out_exists:
        assert [p.name for p in out.iterdir()] == ["keep.txt"]
    else:
        assert not out.exists()


def test_a_failed_write_leaves_no_partial_files(ckpts, tmp_path, capsys, monkeypatch):
    _, base, tuned = ckpts
    out = tmp_path / "out"

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("matplotlib.figure.Figure.savefig", full_disk)
    assert main(["diff", str(base), str(tuned), "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "No space left on device" in err and err.count("\n") == 1
    assert not out.exists()
