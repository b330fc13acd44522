"""Property: an upscale whose duplicates have zeroed o_proj/down_proj computes the base's function."""

from __future__ import annotations

import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness import tiny
from harness.build.native import upscale_model
from tests.build_helpers import identity_plans, tiny_specs

TOL = 1e-5  # fp32, max abs logit difference


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_zeroed_duplicates_keep_the_base_function(data):
    spec = data.draw(tiny_specs())
    plan = data.draw(identity_plans(spec.num_layers))
    seed = data.draw(st.integers(0, 2**16))
    base = tiny.build(spec, seed)
    # a freshly initialised model has zero-ish norms and biases; randomise every weight so the
    # property cannot hold by accident
    with torch.no_grad():
        g = torch.Generator().manual_seed(seed)
        for p in base.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.2)
    up = upscale_model(base, plan)
    assert up.config.num_hidden_layers == sum(b - a for a, b in plan.ranges())
    ids = torch.randint(0, tiny.VOCAB_SIZE, (2, 12), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        diff = (up(ids).logits - base(ids).logits).abs().max().item()
    assert diff <= TOL, f"{spec.arch}, {plan.ranges()}: max |Δlogit| = {diff:.3g} > {TOL}"


def test_a_nonzero_duplicate_changes_the_function():
    """The guard for the property: without the zeroing the outputs differ."""
    from harness.strategies import contiguous

    spec = tiny.TinySpec(num_layers=4, hidden=16, intermediate=32, heads=2, kv_heads=1)
    base = tiny.build(spec, 0)
    with torch.no_grad():
        for p in base.parameters():
            p.normal_(0, 0.2)
    plan = contiguous(1, 3, num_layers=4, copies=1)
    loud = plan.text.replace("value: 0.0", "value: 0.5")
    from harness.plan import parse_plan

    ids = torch.randint(0, tiny.VOCAB_SIZE, (1, 8))
    with torch.no_grad():
        same = (upscale_model(base, plan)(ids).logits - base(ids).logits).abs().max()
        differs = (upscale_model(base, parse_plan(loud))(ids).logits - base(ids).logits).abs().max()
    assert same <= TOL and differs > 1e-3


def test_upscale_model_leaves_the_source_untouched_and_copies_are_independent():
    from harness.strategies import single

    base = tiny.build(tiny.TinySpec(num_layers=3, hidden=16, intermediate=32, heads=2, kv_heads=1), 0)
    before = {k: v.clone() for k, v in base.state_dict().items()}
    up = upscale_model(base, single(1, num_layers=3))
    assert all(torch.equal(before[k], v) for k, v in base.state_dict().items())
    q1 = up.model.layers[1].self_attn.q_proj.weight
    q2 = up.model.layers[2].self_attn.q_proj.weight
    assert torch.equal(q1, q2) and q1.data_ptr() != q2.data_ptr()
    assert up.lm_head.weight.data_ptr() == up.model.embed_tokens.weight.data_ptr()  # still tied
