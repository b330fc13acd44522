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

PINNED = {
    "tiny base": "36e42b721ac37ce377e7f0b50aeb38d7248973f2f34324c0765b2e9376919d9d",
    "fine-tune with a plan": "57b17637db7183a98fd83254bb098af9adc160ddedd7f6bb88fab6d0b095c94b",
    "LoRA run": "e6066b6fec799fadc2833fd95c253c96a51c5641aa0c49bd9ea89768df92e9f2",
    "local base, freeze": "7429a9756a0be2b00c84e4c1e1223f58aad167aaecd332de0bf82132f73e2949",
}


def specs():
    # the pre-training length these hashes were taken under (the tiny default has changed since)
    base = tiny_base(0, steps=200, data=DataSpec.synthetic("original", size=200 * 32))
    return {
        "tiny base": base,
        "fine-tune with a plan": finetune(base, plan=strategies.contiguous(2, 4, num_layers=4, copies=2)),
        "LoRA run": finetune(base, plan=strategies.interleaved(1, 3, num_layers=4),
                             mode=Lora(r=4, layers=(1, 2)), seed=3),
        "local base, freeze": finetune(LocalBase(path="/models/x"), steps=10, mode=Freeze(layers=(0, 1))),
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
