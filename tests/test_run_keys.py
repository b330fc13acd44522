"""A cache key names the computation (harness.runs.engine), so a lookup never returns other bits.

Differential: one seed trained alone and the same seed trained stacked in a group are two
entries; neither is returned when the other is asked for, and a missing seed of a group is
rebuilt in its group (bit-identical to the copy it replaces), never alone. Device and resolved
precision are part of the key; a COMPLETE marker of the wrong shape reads as corrupt.
"""

from __future__ import annotations

import json

import pytest
import torch

from harness.data import DataSpec
from harness.runs import Scratch, get_or_run, get_or_run_many, lookup, make
from harness.runs.cache import MARKER

torch.set_num_threads(1)


def pretrain(seed: int, **kw):
    return make(base=Scratch(seed=seed), seed=seed, steps=4, lr=3e-3, snapshots=(0,), snapshot_epochs=False,
                data=DataSpec.synthetic("original", size=64, batch_size=16, eval_size=16), **kw)


def test_a_seed_alone_and_stacked_are_two_entries(tmp_path):
    specs = [pretrain(s) for s in (0, 1)]
    alone = get_or_run(specs[0], tmp_path)
    group = get_or_run_many(specs, tmp_path)
    assert group[0].info["stacked_seeds"] == [0, 1], "seed 0 of the group was handed the run alone"
    assert group[0].path != alone.path and "stacked_seeds" not in alone.info
    assert lookup(specs[0], tmp_path).path == alone.path  # asking for it alone: the run alone
    assert get_or_run_many(specs, tmp_path)[0].path == group[0].path  # the group again: a hit
    # in the other order, too: the group first, then the seed alone trains its own entry
    other = tmp_path / "other"
    first = get_or_run_many(specs, other)
    assert lookup(specs[0], other) is None
    assert get_or_run(specs[0], other).path not in {r.path for r in first}


def test_a_missing_seed_of_a_group_is_rebuilt_in_its_group(tmp_path):
    specs = [pretrain(s) for s in (0, 1, 2)]
    group = get_or_run_many(specs, tmp_path)
    before = group[1].snapshot_path().read_bytes()
    untouched = group[0].snapshot_path().stat().st_mtime_ns
    (group[1].path / MARKER).unlink()  # as a killed or corrupt entry would be
    with pytest.warns(UserWarning, match=r"recomputing its group \(seeds \[0, 1, 2\]\)"):
        again = get_or_run_many(specs, tmp_path)
    assert again[1].path == group[1].path and again[1].info["stacked_seeds"] == [0, 1, 2]
    assert again[1].snapshot_path().read_bytes() == before  # the same computation: the same bits
    assert again[0].snapshot_path().stat().st_mtime_ns == untouched  # present entries are not rewritten


def test_device_and_resolved_precision_are_in_the_key(tmp_path, monkeypatch):
    from harness.runs.engine import Engine, entry_key

    spec = pretrain(0)
    trained = get_or_run(spec, tmp_path)
    from harness.runs.kernels import describe

    assert trained.info["engine"] == {"device": "cpu", "precision": "fp32", "stack": [], "ranks": 1,
                                      "kernels": describe()}
    # A GPU process resolves "auto" to bf16: it must not be handed this CPU fp32 entry.
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert Engine.here().precision(spec) == "bf16"
    assert lookup(spec, tmp_path) is None
    cpu, gpu = Engine("cpu"), Engine("cuda")
    assert entry_key(spec, cpu, None) != entry_key(spec, gpu, None)
    assert entry_key(spec, Engine("cpu", ranks=2), None) != entry_key(spec, cpu, None)


def test_one_by_one_markers_are_per_device(tmp_path):
    from harness.runs.engine import Engine, marker

    spec = pretrain(0)
    assert marker(tmp_path, spec, Engine("cpu", (0, 1))) != marker(tmp_path, spec, Engine("cuda", (0, 1)))


@pytest.mark.parametrize("content", [
    [], {"files": []}, {"key": "x", "files": {"a": 1}}, {"files": {"step-000000.safetensors": {"size": "1"}}},
    "just a string", {"files": {}},
])
def test_a_complete_marker_of_the_wrong_shape_is_corrupt(tmp_path, content):
    spec = pretrain(0)
    entry = get_or_run(spec, tmp_path)
    good = json.loads((entry.path / MARKER).read_text())
    (entry.path / MARKER).write_text(json.dumps(content))
    assert lookup(spec, tmp_path) is None
    with pytest.warns(UserWarning, match=r"its COMPLETE marker has the wrong structure\); recomputing"):
        again = get_or_run(spec, tmp_path)
    rebuilt = json.loads((again.path / MARKER).read_text())
    assert rebuilt["key"] == good["key"] == again.key and rebuilt["files"].keys() == good["files"].keys()


# Provenance: printed by entry_key(...) below under ENGINE_SCHEMA "uplab.engine/1", run SCHEMA
# "uplab.run/2", tasks.VERSION 6 (2026-12-04; first pinned 2026-12-02 at VERSION 5, which this
# comment misnamed as 3; every VERSION bump re-pins them). Before the engine existed a cache entry's key was
# the spec's own key (tiny_base(0).key = 5d41da1743de...); these pins change only deliberately.
PINNED = {
    "base-alone": "365710f4da30f8bd6b61c0d2bb24352b43b01d248187e95057058965895a7424",
    "finetune-of-it-alone": "bd512e3d2537029d03daa48470c77305ed4ef7f507c90a09396772b206366298",
    "base-in-0-1-2": "6b1a168b17641f4f5feb4d246bf32f4f742835a042a192eae563104b1a15c610",
}


def test_entry_keys_are_pinned():
    from harness.data import DataSpec
    from harness.runs import finetune, tiny_base
    from harness.runs.engine import Engine, entry_key

    base = tiny_base(0)
    alone = entry_key(base, Engine("cpu"), None)
    # the fine-tune defaults before issue 26, spelled out: the keys pin the serialisation, not the defaults
    old = finetune(base, seed=0, epochs=1, lr=3e-4, warmup=0.05,
                   data=DataSpec.synthetic("target", size=64 * 32))
    got = {"base-alone": alone, "finetune-of-it-alone": entry_key(old, Engine("cpu"), alone),
           "base-in-0-1-2": entry_key(base, Engine("cpu", (0, 1, 2)), None)}
    assert got == PINNED
