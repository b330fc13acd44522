"""Run specs: a stable content hash that every field reaches, JSON round trips, clear errors;
and the chain base → plan → fine-tune through the cache."""

import pytest
import torch

from harness.data import DataSpec, Local, Synthetic
from harness.errors import UplabError
from harness.runs import (LocalBase, RunSpec, Scratch, finetune, get_or_run, make, tiny_base)
from harness.strategies import contiguous
from harness.train import Freeze, Full, Lora

torch.set_num_threads(1)


def reference() -> RunSpec:
    # lr given: RunSpec's default became the tiny fine-tune's 3e-4 (issue 15); this run keeps 1e-3
    return make(base=Scratch(seed=3), data=DataSpec.synthetic("target", size=256), steps=10, lr=1e-3)


# Provenance: print(reference().key) with SCHEMA "uplab.run/2" and tasks.VERSION held at 3.
# A change means every cached run is orphaned: that is only right together with a SCHEMA bump.
PINNED_KEY = "06f7a7ff2420739c2007587696b7c11dc73f626febf12aa0ab195c6ce6229df4"


def test_hash_is_stable_and_pinned(monkeypatch):
    # tasks.VERSION has its own bumps (every hash carries it); held at 3 this pins the spec itself
    from harness.data import tasks

    monkeypatch.setattr(tasks, "VERSION", 3)
    assert reference().key == reference().key == PINNED_KEY
    assert len({reference(), reference()}) == 1  # hashable, equal by content


# One changed value per field; the coverage assertion makes a new field fail until it is added.
CHANGES = {
    "base": Scratch(seed=4),
    "plan": contiguous(0, 1, num_layers=2, copies=1),
    "data": DataSpec.synthetic("target", size=512),
    "mode": Lora(),
    "steps": 11,
    "epochs": None,  # paired with steps below
    "lr": 2e-3,
    "schedule": "constant",
    "warmup": 0.0,
    "min_lr": 0.0,
    "weight_decay": 0.1,
    "grad_clip": None,
    "seed": 1,
    "snapshots": (0,),
    "snapshot_epochs": False,
    "track": ("*.o_proj.weight",),
    "precision": "fp32",
    "optimizer": "sgd",
    "scores": "ends",
}
NESTED = {
    "data.train.seed": DataSpec(train=Synthetic(domain="target", size=256, seed=1)),
    "data.evals": DataSpec(train=Synthetic(domain="target", size=256), evals={}),
    "data.eval_size": DataSpec.synthetic("target", size=256, eval_size=128),
    "data.batch_size": DataSpec.synthetic("target", size=256, batch_size=16),
    "data.max_len": DataSpec.synthetic("target", size=256, max_len=32),
    "data.train_on": DataSpec.synthetic("target", size=256, train_on="all"),
    "data.train.domain": DataSpec.synthetic("original", size=256),
    "data.local": DataSpec(train=Local(path="/data/x.txt")),
    "base.preset": Scratch(preset="tiny-llama", seed=3),
    "base.path": LocalBase(path="/models/x"),
    "base.run": reference(),
}


def test_every_field_changes_the_hash():
    assert set(CHANGES) | {"kind"} == set(RunSpec.model_fields), "add the new field to CHANGES"
    ref = reference()
    keys = {ref.key}
    for field, value in CHANGES.items():
        extra = {"epochs": 2, "steps": None} if field == "epochs" else {}
        keys.add(ref.model_copy(update={field: value, **extra}).key)
    for name, value in NESTED.items():
        field = name.split(".")[0]
        keys.add(make(**{**ref.model_dump(exclude={"kind"}, round_trip=True), field: value}).key)
    for mode in (Lora(r=4), Lora(alpha=8), Lora(targets=("o_proj",)), Lora(layers=(1,)), Lora(dropout=0.1),
                 Freeze(layers=(0,)), Freeze(layers=(0,), embeddings=False), Full()):
        keys.add(make(**{**ref.model_dump(exclude={"kind", "mode"}, round_trip=True), "mode": mode}).key)
    assert len(keys) == 1 + len(CHANGES) + len(NESTED) + 8 - 1  # Full() is the default


def test_json_round_trip_keeps_identity():
    spec = finetune(tiny_base(2), plan=contiguous(0, 2, num_layers=4), mode=Lora(r=4, layers=(1, 2)),
                    track=("*.o_proj.weight",))
    back = RunSpec.from_json(spec.canonical())
    assert back == spec and back.key == spec.key and back.base.key == spec.base.key
    assert isinstance(back.mode, Lora) and back.root() == Scratch(seed=2)
    assert RunSpec.from_json(spec.model_dump_json()) == spec
    assert back.plan == spec.plan and back.plan.layer_map(4).roles() == spec.plan.layer_map(4).roles()


@pytest.mark.parametrize("fields, match", [
    (dict(steps=None), "exactly one of steps and epochs"),
    (dict(epochs=2), "exactly one of steps and epochs"),
    (dict(lr=-1.0), r"at lr: Input should be greater than 0"),
    (dict(snapshots=(-1,)), "snapshot steps must be >= 0"),
    (dict(mode={"kind": "dora"}), "at mode"),
    (dict(colour="red"), "at colour"),
])
def test_invalid_specs_are_one_line(fields, match):
    base = dict(base=Scratch(), data=DataSpec.synthetic("target"), steps=3)
    with pytest.raises(UplabError, match=match) as e:
        make(**{**base, **fields})
    assert "\n" not in str(e.value)


def test_defaults_read_as_documented():
    base, ft = tiny_base(5), finetune(tiny_base(5))
    assert base.base == Scratch(seed=5) and base.seed == 5 and base.data.train.domain == "original"
    assert ft.base == base and ft.seed == 5 and ft.data.train.domain == "target" and ft.epochs == 2
    assert ft.lr == 6e-3 and ft.data.train.replay == 0.5 and ft.data.train.size == 64 * 32
    assert ft.warmup == 40 / 128 and base.warmup == 0.05  # the fine-tune's 40-step warm-up; pre-training keeps 5 %
    assert ft.snapshots == (0,) and ft.plan is None and ft.mode == Full()


# --- the chain through the cache -------------------------------------------------------------


def small(**kw):
    return DataSpec.synthetic(kw.pop("domain"), size=64, batch_size=16, eval_size=32, **kw)


def test_upscale_starts_as_the_base_and_bases_are_shared(tmp_path):

    base = tiny_base(0, preset="tiny8", steps=8, data=small(domain="original"))
    plan = contiguous(4, 6, num_layers=8, copies=2)
    up = get_or_run(finetune(base, plan=plan, steps=2, data=small(domain="target")), tmp_path)
    b = get_or_run(base, tmp_path)
    assert up.info["source_layers"] == 8 and up.info["layers"] == 12 and up.info["base_key"] == base.key
    assert "".join("X" if r == "dup" else "0" for r in up.info["roles"]) == "000000XXXX00"
    # the zeroed duplicates make the upscale compute the base's function: same held-out loss
    for name in ("original", "target"):
        assert up.scores(0)[name]["loss"] == pytest.approx(b.scores()[name]["loss"], abs=1e-5)
    w0 = up.state_dict(0)
    assert all(float(w0[f"model.layers.{i}.self_attn.o_proj.weight"].abs().sum()) == 0 for i in range(6, 10))
    assert float(w0["model.layers.5.self_attn.o_proj.weight"].abs().sum()) > 0
    assert up.model().config.num_hidden_layers == 12
    entries = lambda: sorted(p.name for p in tmp_path.iterdir() if p.is_dir())
    before = entries()
    get_or_run(finetune(base, plan=plan, steps=2, lr=1e-3, data=small(domain="target")), tmp_path)
    assert len(entries()) == len(before) + 1  # a new fine-tune, the same base entry
    with pytest.raises(UplabError, match="reaches past the source's 8 layers"):
        get_or_run(finetune(base, plan=contiguous(4, 9, num_layers=9), steps=1, data=small(domain="target")),
                   tmp_path)


def test_checkpoint_bases_find_their_tokenizer(tmp_path):
    from harness import tiny
    from harness.data import ByteTokenizer
    from harness.runs.runner import load_base, tokenizer_for

    tiny.build(tiny.PRESETS["tiny8"], 0).save_pretrained(tmp_path / "bare")  # no uplab_tiny.json
    assert isinstance(tokenizer_for(LocalBase(path=str(tmp_path / "bare"))), ByteTokenizer)
    assert load_base(LocalBase(path=str(tmp_path / "bare"))).config.num_hidden_layers == 8
    big = tiny.TinySpec(num_layers=2)
    model = tiny.build(big, 0)
    model.config.vocab_size = 1000  # not the byte vocabulary, and no tokenizer files
    model.config.save_pretrained(tmp_path / "other")
    with pytest.raises(UplabError, match="no usable tokenizer"):
        tokenizer_for(LocalBase(path=str(tmp_path / "other")))
    with pytest.raises(UplabError, match="has no config.json"):
        load_base(LocalBase(path=str(tmp_path / "nowhere")))


def test_a_base_without_a_readable_depth_is_refused_before_loading(tmp_path):
    """Through the run specs too (the plugin's --base-model), a depth is read, never defaulted."""
    import json as _json

    from harness import tiny as _tiny
    from harness.errors import UplabError
    from harness.runs.runner import load_checkpoint

    folder = _tiny.save(_tiny.preset("tiny8"), 0, tmp_path / "m")
    config = _json.loads((folder / "config.json").read_text())
    del config["num_hidden_layers"]
    (folder / "config.json").write_text(_json.dumps(config))
    with pytest.raises(UplabError, match="num_hidden_layers"):
        load_checkpoint(str(folder))
    config["num_hidden_layers"] = 12  # more layers than the weights hold
    (folder / "config.json").write_text(_json.dumps(config))
    with pytest.raises(UplabError, match="config.json gives 12 layers but the weights hold layers 0-7"):
        load_checkpoint(str(folder))
