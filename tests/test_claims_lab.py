"""The `lab` of each scale builds the runs it should (specs only: nothing trains here), maps the
seed's layout onto each depth, and skips what a scale cannot provide with its reason."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from harness.claims import NotApplicable
from harness.claims import lab as ex
from harness.claims import settings as st
from harness import tiny
from harness.data import Local
from harness.runs import LocalBase, finetune, tiny_base
from harness.train import Lora

Skipped = pytest.skip.Exception


class SpecLab(ex.Lab):
    """A Lab whose runs are their specs: what would be trained, without training it."""

    def _get(self, seed, spec_of):
        return spec_of(seed)


def test_seed_layout_at_each_depth():
    assert st.seed_layout_range(55) == (19, 41)
    assert st.seed_layout_range(8) == (3, 6)
    assert st.seed_layout_range(16) == (6, 12)
    lm = SpecLab(Path("c"), st.small_setting()).layer_map("contiguous")
    assert lm.num_layers == 16 + 2 * 6 and lm.indices("dup") == list(range(12, 24))
    assert {lm.source_of(i) for i in lm.indices("dup")} == set(range(6, 12))


def test_tiny_runs_are_the_specs_the_cache_already_holds():
    # the keys of every cached tiny run depend on this staying exactly the default fine-tune
    lab = SpecLab(Path("c"), st.tiny_setting())
    assert lab.normal(3) == finetune(tiny_base(3), snapshots=st.SNAPSHOTS)
    plan = st.plan_for("contiguous", lab.setting.depth)
    assert lab.upscaled(3, "contiguous", lr=1e-3) == finetune(tiny_base(3), plan=plan,
                                                              snapshots=st.SNAPSHOTS, lr=1e-3)
    assert lab.lr == 6e-3 and lab.epoch_steps == 64


def test_small_runs_pretrain_the_small_preset():
    lab = SpecLab(Path("c"), st.small_setting())
    spec = lab.upscaled(2, "interleaved", mode=Lora())
    assert spec.root().preset == "small" and spec.base.seed == 2 and spec.base.steps == 400
    assert spec.snapshots == st.SMALL_SNAPSHOTS and spec.lr == lab.lr == 1e-4
    assert spec.precision == "auto"  # bf16 on the GPU, by the loop
    assert tiny.PRESETS["small"].num_layers == lab.setting.depth == 16


def full_lab(tmp_path, monkeypatch):
    base = tiny.save(tiny.preset("tiny", num_layers=10), 0, tmp_path / "base")
    data = tmp_path / "data.txt"
    data.write_text("\n".join(f"line {i}: " + "abc" * (i % 7 + 1) for i in range(400)))
    monkeypatch.setattr("harness.launch.get_or_launch", lambda spec, cache: spec, raising=False)
    return SpecLab(Path("c"), st.full_setting(base, data)), base, data


def test_full_runs_fine_tune_the_given_checkpoint_on_the_given_data(tmp_path, monkeypatch):
    lab, base, data = full_lab(tmp_path, monkeypatch)
    spec = lab.upscaled(5, "contiguous")
    assert spec.base == LocalBase(path=str(base)) and spec.seed == 5
    assert spec.data.train == Local(path=str(data)) and set(spec.data.evals) == {"target"}
    assert lab.layer_map("contiguous").source_layers == 10 and lab.epoch_steps >= 1
    with pytest.raises(Skipped, match="needs held-out 'original'-domain data"):
        lab.needs("original")
    lab.needs("target")
    with pytest.raises(Skipped, match="the base is the given checkpoint"):
        lab.base(0)


def test_manifest_lab_gives_its_one_run_and_skips_the_rest():
    run = SimpleNamespace(layer_map="LM", epoch_end=lambda e: {1: 10, 2: 20}[e])
    lab = ex.ManifestLab(run)
    assert lab.seeds(list(range(8))) == [0] and lab.single_run
    assert lab.layer_map("contiguous") == "LM" and lab.epoch_steps == 10
    assert lab.upscaled(0, "contiguous", epochs=2, snapshots=(0, 1), track=("*",)) is run
    reasons = {
        "`interleaved` needs training": lambda: lab.layer_map("interleaved"),
        "a normal, not upscaled, fine-tune": lambda: lab.normal(0),
        "a fine-tune with other mode": lambda: lab.upscaled(0, "contiguous", mode=Lora()),
        "a base pre-trained per seed": lambda: lab.base(0),
        "a manifest gives weights only": lambda: lab.needs("target"),
        "its schedule": lambda: lab.needs_training("its schedule"),
    }
    for reason, call in reasons.items():
        with pytest.raises(Skipped, match=reason):
            call()


def test_a_missing_run_trains_with_the_other_seeds_of_its_kind(monkeypatch, tmp_path):
    """The lab asks the cache for a kind's missing seeds at once (one stacked computation)."""
    calls = []

    def many(specs, cache):
        calls.append([s.seed for s in specs])
        return [f"run-{s.seed}" for s in specs]

    monkeypatch.setattr(ex, "get_or_run_many", many)
    monkeypatch.setattr(ex, "lookup", lambda spec, cache: None)
    monkeypatch.setattr(ex, "get_or_run", lambda spec, cache, progress: f"alone-{spec.seed}")
    lab = ex.Lab(tmp_path, st.tiny_setting(), together=(0, 1, 2))
    assert lab.upscaled(1, "contiguous") == "run-1"
    assert lab.base(2) == "run-2" and calls == [[0, 1, 2], [0, 1, 2]]
    assert lab.normal(7) == "alone-7"  # a seed outside the session's list trains alone
    assert ex.Lab(tmp_path, st.tiny_setting()).normal(1) == "alone-1"


def test_registered_targets_and_native_depth_controls():
    lab = SpecLab(Path("c"), st.tiny_setting())
    conflict = lab.upscaled(2, "contiguous", target="conflict")
    assert conflict.data.train.domain == "conflict" and conflict.plan == lab.plan("contiguous")
    assert lab.normal(2).data.train.domain == "target"
    deep = lab.normal(2, depth=28)
    assert deep.base.base.preset == "tiny@28" and deep.base.seed == 2 and deep.plan is None
    full = SpecLab(Path("c"), st.Setting("full", 4, "llama", lambda s: LocalBase(path="/m")))
    with pytest.raises(NotApplicable, match="'conflict' target"):
        full.normal(0, target="conflict")
    with pytest.raises(NotApplicable, match="pre-trained at depth 9"):
        full.normal(0, depth=9)


@pytest.mark.parametrize("setting, preset", [(st.tiny_setting, "tiny"), (st.small_setting, "small")])
def test_sgd_arm_lr_follows_its_rule(setting, preset):
    """The SGD control arm's lr is the rule's value at the scale's own fine-tune lr and base size,
    not a number picked after seeing a result; its runs differ from AdamW's only there."""
    s = setting()
    lab = SpecLab(Path("c"), s)
    adamw = lab.upscaled(0, "contiguous")
    n = sum(p.numel() for p in tiny.build(tiny.preset(preset), 0).parameters())
    assert s.sgd_lr == pytest.approx(st.sgd_lr_for(adamw.lr, n), rel=0.02)
    sgd = lab.upscaled(0, "contiguous", **lab.sgd())
    assert (sgd.optimizer, sgd.lr) == ("sgd", s.sgd_lr)
    assert sgd.model_copy(update={"optimizer": "adamw", "lr": adamw.lr}) == adamw


def test_sgd_arm_skips_where_a_scale_has_none(tmp_path):
    real = SpecLab(Path("c"), st.Setting("real", 4, "llama", lambda s: LocalBase(path=str(tmp_path))))
    with pytest.raises(NotApplicable, match="SGD control arm"):
        real.sgd()


@pytest.mark.parametrize("worker, count, cores, expected", [
    (None, None, 16, 16), ("gw0", "8", 16, 2), ("gw3", "2", 2, 1), ("gw0", "32", 16, 1)])
def test_xdist_workers_share_the_cores_for_measures(monkeypatch, worker, count, cores, expected):
    """Issue 23: under `-n 8` each worker's measures would start every core's threads."""
    from harness.claims.settings import cpu_threads

    for name, value in (("PYTEST_XDIST_WORKER", worker), ("PYTEST_XDIST_WORKER_COUNT", count)):
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    monkeypatch.setattr("os.cpu_count", lambda: cores)
    assert cpu_threads() == expected
