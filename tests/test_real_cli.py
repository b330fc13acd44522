"""`uplab train` for real models: batch size, sequence length, eval sets and eval size from flags,
real text domains by name, and a progress bar with tokens/s."""

import argparse
import json

import pytest
import torch

from harness import tiny
from harness.commands import train as cmd
from harness.data.text import corpus_sha256
from harness.errors import UplabError

torch.set_num_threads(1)


def parse(*argv):
    p = argparse.ArgumentParser()
    cmd.register(p.add_subparsers())
    return p.parse_args(["train", *argv])


def spec_of(capsys, *argv) -> dict:
    args = parse(*argv, "--print-spec")
    assert args.func(args) == 0
    return json.loads(capsys.readouterr().out)["spec"]


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    return str(tiny.save(tiny.PRESETS["tiny"], 0, tmp_path_factory.mktemp("b") / "base"))


def test_data_flags_make_the_data_spec(base, capsys):
    data = spec_of(capsys, "--base", base, "--data", "python", "--batch-size", "4", "--max-len", "96",
                   "--eval-size", "8", "--steps", "3")["data"]
    assert (data["batch_size"], data["max_len"], data["eval_size"], data["train_on"]) == (4, 96, 8, "all")
    assert data["train"] == {"kind": "text", "domain": "python", "sha256": corpus_sha256("python"),
                             "heldout_percent": 10, "size": None, "draw": None}
    # real text: prose plays the original domain, python the target
    assert {k: v["domain"] for k, v in data["evals"].items()} == {"original": "prose", "target": "python"}


def test_eval_names_choose_the_sets(base, capsys, tmp_path):
    data = spec_of(capsys, "--base", base, "--data", "python", "--eval", "python")["data"]
    assert list(data["evals"]) == ["target"]
    f = tmp_path / "d.jsonl"
    f.write_text('{"text": "hello"}\n')
    data = spec_of(capsys, "--base", base, "--data", str(f))["data"]
    assert list(data["evals"]) == ["target"] and data["evals"]["target"]["path"] == str(f)  # its own held-out split
    data = spec_of(capsys, "--base", base, "--eval", "original", "--eval-size", "16")["data"]
    assert list(data["evals"]) == ["original"] and data["eval_size"] == 16


def test_defaults_keep_the_tiny_spec(base, capsys):
    """Without the new flags a tiny run's spec (and so its cache key) is what it was."""
    from harness.data import DataSpec
    from harness.runs import TINY_FINETUNE

    data = spec_of(capsys, "--base", base, "--data", "original")["data"]
    want = DataSpec.synthetic("original", size=TINY_FINETUNE["data_size"]).model_dump(mode="json")
    assert data == want


def test_bad_data_flags_are_one_line(base):
    with pytest.raises(UplabError, match="does not exist") as e:
        cmd.build_spec(parse("--base", base, "--data", "python", "--eval", "nowhere.txt"))
    assert "\n" not in str(e.value)
    with pytest.raises(UplabError, match="invalid data flags"):
        cmd.build_spec(parse("--base", base, "--eval", "original", "--eval-size", "100000"))
    with pytest.raises(SystemExit):
        parse("--max-len", "4")
    with pytest.raises(SystemExit):
        parse("--eval", ",")


def test_progress_bar_shows_tokens_per_second(base, tmp_path, capsys):
    args = parse("--base", base, "--data", "python", "--batch-size", "2", "--max-len", "32",
                 "--eval-size", "2", "--steps", "3", "--cache", str(tmp_path / "c"))
    assert args.func(args) == 0
    captured = capsys.readouterr()
    assert "tok/s" in captured.err and "pad tok/s" not in captured.err  # packed text: exact count
    assert "3 steps" in captured.out and "original loss" in captured.out and "target loss" in captured.out
