"""The `lab` of each scale builds the runs it should (specs only: nothing trains here), maps the
seed's layout onto each depth, and skips what a scale cannot provide with its reason."""

from __future__ import annotations

from dataclasses import replace
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

    def _get(self, seed, spec_of, settle=None):
        return spec_of(seed)

    def _as_asked(self, run, spec):
        return run  # the spec that trains


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
    plan = st.plan_for("contiguous", lab.setting.depth)
    assert lab.upscaled(3, "contiguous", lr=1e-3) == finetune(tiny_base(3), plan=plan,
                                                              snapshots=st.SNAPSHOTS, lr=1e-3, scores="ends")
    assert lab.upscaled(3, "interleaved") == finetune(tiny_base(3), plan=lab.plan("interleaved"),
                                                      snapshots=st.SNAPSHOTS)
    assert lab.lr == 6e-3 and lab.epoch_steps == 64


def test_only_the_kinds_read_as_loss_curves_score_between_their_ends():
    """Lab._scores: the matched-loss curves read the default fine-tunes of the normal model and of
    the contiguous and interleaved upscales (either target) and their frozen arms, and the long
    runs' ablations read theirs; every other kind is scored at step 0 and its end only."""
    from harness.claims.time import Long
    from harness.train import Freeze

    lab = SpecLab(Path("c"), replace(st.tiny_setting(), share_long=False))
    frozen = Freeze(layers=(1, 2))
    dense = [lab.normal(3), lab.normal(3, target="conflict"), lab.upscaled(3, "contiguous"),
             lab.upscaled(3, "interleaved", target="conflict"), lab.upscaled(3, "contiguous", mode=frozen),
             lab.normal(3, mode=frozen), lab.upscaled(3, "contiguous", **lab.sgd(), **Long(64).overrides)]
    ends = [lab.upscaled(3, "contiguous", mode=Lora(r=8, alpha=16)), lab.normal(3, lr=2e-2),
            lab.upscaled(3, "contiguous", **lab.sgd()), lab.normal(3, depth=18), lab.upscaled(3, "single"),
            lab.upscaled(3, "block"), lab.finetuned(3, lab.plan("single"), lr=1e-3)]
    assert [s.scores for s in dense] == ["snapshots"] * len(dense)
    assert [s.scores for s in ends] == ["ends"] * len(ends)


def test_the_default_pair_and_the_sgd_arm_train_as_their_long_twins():
    """One run per seed serves a default fine-tune and the time claims' densely recorded run of
    the same kind; every other kind trains as asked, and `real` shares nothing."""
    from harness.claims.time import Long
    from harness.claims.trajectory import long_normal_run, long_run

    lab = SpecLab(Path("c"), st.tiny_setting())
    long = Long(lab.epoch_steps).overrides
    plan = lab.plan("contiguous")
    assert lab.normal(3) == long_normal_run(lab, 3) == finetune(tiny_base(3), **long)
    assert lab.upscaled(3, "contiguous") == long_run(lab, 3) == finetune(tiny_base(3), plan=plan, **long)
    assert lab.upscaled(3, "contiguous", **lab.sgd()) == long_run(lab, 3, **lab.sgd())
    assert set(st.SNAPSHOTS) < set(long["snapshots"])  # the twin records more than the default
    for other in (dict(lr=2e-2), dict(mode=Lora(r=8, alpha=16)), dict(target="conflict"), dict(depth=18)):
        asked = lab.upscaled(3, "contiguous", **other) if "depth" not in other else lab.normal(3, **other)
        assert asked.snapshots == st.SNAPSHOTS and not asked.track, other
    real = SpecLab(Path("c"), replace(st.tiny_setting(), share_long=False))
    assert real.normal(3) == finetune(tiny_base(3), snapshots=st.SNAPSHOTS)


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

    def many(specs, cache, after=None):
        calls.append([s.seed for s in specs])
        return [f"run-{s.seed}" for s in specs]

    monkeypatch.setattr(ex, "get_or_run_many", many)
    monkeypatch.setattr(ex, "lookup", lambda spec, cache: None)
    monkeypatch.setattr(ex, "get_or_run", lambda spec, cache, progress: f"alone-{spec.seed}")
    lab = ex.Lab(tmp_path, st.tiny_setting(), together=(0, 1, 2))
    assert lab.upscaled(1, "interleaved") == "run-1"
    assert lab.base(2) == "run-2" and calls == [[0, 1, 2], [0, 1, 2]]
    assert lab.normal(7, lr=1e-3) == "alone-7"  # a seed outside the session's list trains alone
    assert ex.Lab(tmp_path, st.tiny_setting()).normal(1, lr=1e-3) == "alone-1"


def test_registered_targets_and_native_depth_controls():
    lab = SpecLab(Path("c"), st.tiny_setting())
    conflict = lab.upscaled(2, "contiguous", target="conflict")
    assert conflict.data.train.domain == "conflict" and conflict.plan == lab.plan("contiguous")
    assert lab.normal(2).data.train.domain == "target"
    deep = lab.normal(2, depth=18)
    assert deep.base.base.preset == "tiny@18" and deep.base.seed == 2 and deep.plan is None
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


def test_a_shared_twin_gives_the_numbers_of_the_run_it_stands_for(tmp_path):
    """Trained both ways (shared with the long twin, and alone), the default runs read the same
    snapshot bytes and scores; the view hides the twin's extra snapshots."""
    from harness.claims.trajectory import long_run
    from harness.data import DataSpec
    from harness.errors import UplabError

    setting = replace(st.tiny_setting(), base_of=lambda s: tiny_base(s, steps=8), epoch=4,
                      finetune={"snapshots": (0, 2), "data": DataSpec.synthetic("target", size=4 * 32, replay=0.5)})
    shared = ex.Lab(tmp_path / "shared", setting, together=(0, 1))
    alone = ex.Lab(tmp_path / "alone", replace(setting, share_long=False), together=(0, 1))
    for seed in (0, 1):
        for name, get in (("normal", lambda lab: lab.normal(seed)),
                          ("contiguous", lambda lab: lab.upscaled(seed, "contiguous"))):
            a, b = get(shared), get(alone)
            assert a.spec == b.spec and a.key != b.key and a.steps == b.steps == [0, 2, 4, 8], name
            assert [(a.path / f).read_bytes() for f in ("step-000008.safetensors", "step-000004.safetensors")] == \
                   [(b.path / f).read_bytes() for f in ("step-000008.safetensors", "step-000004.safetensors")]
            assert [a.scores(s) for s in a.steps] == [b.scores(s) for s in b.steps]
            assert a.metrics["train"] == b.metrics["train"]
            with pytest.raises(UplabError, match="no scores at step 1"):
                a.scores(1)
            with pytest.raises(UplabError, match="no snapshot at step 1"):
                a.snapshot_path(1)
        long = long_run(shared, seed)
        assert long.key == shared.upscaled(seed, "contiguous").key and 1 in long.steps
    asked = finetune(tiny_base(0, steps=8), snapshots=(0, 3), data=setting.finetune["data"])
    with pytest.raises(UplabError, match=r"cannot stand in .* steps \[3\]"):
        alone.normal(0).read_as(asked)  # alone, it kept steps 0, 2, 4 and 8 only
