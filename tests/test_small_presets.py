"""The `small` scale's presets (DESIGN §4): their size, and that the upscale builder serves them."""

from __future__ import annotations

import pytest
import torch
import transformers

from harness import tiny
from harness.build.native import upscale_model
from harness.plan import parse_plan
from harness.strategies import contiguous

SMALL = [name for name in tiny.PRESETS if name.startswith("small")]
TOL = 1e-5  # fp32, max abs logit difference, as in test_build_property


def test_small_presets_cover_the_three_architectures():
    assert {tiny.PRESETS[n].arch for n in SMALL} == {"mistral", "llama", "qwen2"}


@pytest.mark.parametrize("name", SMALL)
def test_small_preset_is_tens_of_millions_of_parameters_and_16_to_32_layers(name):
    spec = tiny.PRESETS[name]
    with torch.device("meta"):  # the real module tree, no memory
        model = transformers.AutoModelForCausalLM.from_config(spec.hf_config())
    n = sum(p.numel() for p in model.parameters())
    assert 10e6 <= n <= 100e6, f"{name}: {n:,} parameters, outside [10M, 100M]"
    assert 16 <= model.config.num_hidden_layers <= 32, f"{name}: {model.config.num_hidden_layers} layers"
    assert model.config.vocab_size == tiny.VOCAB_SIZE


def test_upscaled_small_preset_keeps_the_base_function():
    base = tiny.build(tiny.PRESETS["small"], 0)
    plan = contiguous(6, 10, num_layers=16, copies=1)
    ids = torch.randint(0, tiny.VOCAB_SIZE, (2, 32), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        want = base(ids).logits
        up = upscale_model(base, plan)
        same = (up(ids).logits - want).abs().max().item()
        # the guard: duplicates that are not zeroed do change the function at this init
        loud = upscale_model(base, parse_plan(plan.text.replace("value: 0.0", "value: 0.5")))
        differs = (loud(ids).logits - want).abs().max().item()
    assert up.config.num_hidden_layers == 20
    assert same <= TOL, f"small, {plan.ranges()}: max |Δlogit| = {same:.3g} > {TOL}"
    assert differs > 1e-2, f"non-zeroed duplicates changed the logits by only {differs:.3g}"
