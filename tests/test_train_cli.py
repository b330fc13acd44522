"""`uplab train`: flags become a run spec; one clear line for bad input. (Registered in
harness.cli.COMMANDS by the lead; tested here through the module's own parser.)"""

import argparse
import json

import pytest
import torch

from harness import tiny
from harness.commands import train as cmd
from harness.errors import UplabError

torch.set_num_threads(1)


def parse(*argv):
    p = argparse.ArgumentParser()
    cmd.register(p.add_subparsers())
    return p.parse_args(["train", *argv])


def test_flags_make_the_spec(tmp_path, capsys):
    base = tiny.save(tiny.PRESETS["tiny"], 0, tmp_path / "base")
    args = parse("--base", str(base), "--mode", "freeze", "--freeze", "0-2,5", "--steps", "3",
                 "--data", "original", "--print-spec")
    assert args.func(args) == 0
    spec = json.loads(capsys.readouterr().out)["spec"]
    assert spec["mode"] == {"kind": "freeze", "layers": [0, 1, 2, 5], "embeddings": True}
    assert spec["base"] == {"kind": "path", "path": str(base)} and spec["steps"] == 3
    assert spec["data"]["train"]["domain"] == "original"


def test_runs_through_the_cache(tmp_path, capsys):
    base = tiny.save(tiny.PRESETS["tiny"], 0, tmp_path / "base")
    args = parse("--base", str(base), "--steps", "2", "--cache", str(tmp_path / "c"), "--quiet")
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "2 steps, snapshots [0, 2]" in out and "target loss" in out
    assert args.func(args) == 0  # the second time from the cache


def test_bad_input(tmp_path):
    with pytest.raises(UplabError, match="does not exist"):
        cmd.run(parse("--data", str(tmp_path / "missing.txt")))
    with pytest.raises(UplabError, match="no such config file"):
        cmd.run(parse("--plan", str(tmp_path / "missing.yml")))
    with pytest.raises(SystemExit):
        parse("--freeze", "a-b")
