"""Run-spec hashes are the cache's identity: a refactor that changes one silently orphans every
cached run. These hashes were computed before the architecture clean-up (issue 15); a change
here must come with a SCHEMA bump in harness.runs.spec and a note in the commit.

The synthetic data's version (tasks.VERSION) is part of every hash and has its own bumps; it is
held at the value these hashes were taken under, so this test pins the spec's own serialisation.
"""

import pytest

from harness import strategies
from harness.data import DataSpec, tasks
from harness.runs import LocalBase, finetune, tiny_base
from harness.train.modes import Freeze, Lora

# Taken under SCHEMA "uplab.run/2" (the stacked forward's attention-kernel change); the spec
# serialisation itself is the one pinned before issue 15 (under /1 these were 36e42b72…, 57b17637…,
# e6066b6f…, 7429a975…).
PINNED = {
    "tiny base": "fc9b30fab3e3380a5bcfa8f40a4a9cfebe79ee88b06119ffc383d43057e8271e",
    "fine-tune with a plan": "6dc233f9ef9048888267ee09cdc930d800cdca3855f64d164d1a3190feb5bf7f",
    "LoRA run": "43259d28610dfb50071de0d96b927a04b9c6903d6a0e8faa4263e5eb5c5265f3",
    "local base, freeze": "98e9eaf29bd541cb26c8739f88a1c06616cd874a6bfc386147af048a0fe47adb",
}


def specs():
    # the pre-training length these hashes were taken under (the tiny default has changed since)
    base = tiny_base(0, steps=200, data=DataSpec.synthetic("original", size=200 * 32))
    # and the fine-tune defaults before issue 26 (one 64-step epoch at lr 3e-4 after a 5 % warm-up,
    # no replay): a Synthetic source at replay 0 must serialise as it did before the field existed
    old = dict(lr=3e-4, warmup=0.05, data=DataSpec.synthetic("target", size=64 * 32))
    return {
        "tiny base": base,
        "fine-tune with a plan": finetune(base, plan=strategies.contiguous(2, 4, num_layers=4, copies=2),
                                          epochs=1, **old),
        "LoRA run": finetune(base, plan=strategies.interleaved(1, 3, num_layers=4),
                             mode=Lora(r=4, layers=(1, 2)), seed=3, epochs=1, **old),
        "local base, freeze": finetune(LocalBase(path="/models/x"), steps=10, mode=Freeze(layers=(0, 1)), **old),
    }


@pytest.fixture
def tasks_version_3(monkeypatch):
    monkeypatch.setattr(tasks, "VERSION", 3)


def test_hashes_of_representative_specs_are_pinned(tasks_version_3):
    got = {name: spec.key for name, spec in specs().items()}
    assert got == PINNED


def test_a_plan_is_a_value_in_the_spec_and_text_only_in_the_hash():
    from harness.plan import Plan
    from harness.runs import RunSpec

    spec = specs()["fine-tune with a plan"]
    assert isinstance(spec.plan, Plan)
    assert spec.model_dump(mode="json")["plan"] == spec.plan.text
    again = RunSpec.from_json(spec.canonical())
    assert isinstance(again.plan, Plan) and again.key == spec.key and again == spec
