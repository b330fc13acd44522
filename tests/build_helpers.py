"""Random tiny decoders and random passthrough configs for the builder tests."""

from __future__ import annotations

import yaml
from hypothesis import strategies as st

from harness.plan import Plan, parse_plan
from harness.strategies import ZERO_DUPLICATE
from harness.tiny import TinySpec

ARCHS = ("mistral", "llama", "qwen2")


@st.composite
def tiny_specs(draw, max_layers: int = 5) -> TinySpec:
    heads = draw(st.sampled_from([2, 4]))
    return TinySpec(
        arch=draw(st.sampled_from(ARCHS)),
        num_layers=draw(st.integers(2, max_layers)),
        hidden=heads * draw(st.sampled_from([4, 8])),
        intermediate=draw(st.sampled_from([16, 24])),
        heads=heads,
        kv_heads=draw(st.sampled_from([1, 2])) if heads == 2 else 2,
        tie_embeddings=draw(st.booleans()),
    )


def _to_plan(slices: list[dict], **top) -> Plan:
    return parse_plan(yaml.safe_dump({"merge_method": "passthrough", "slices": slices, **top}))


@st.composite
def identity_plans(draw, num_layers: int) -> Plan:
    """Every source layer once, in order, as orig; zeroed duplicates of any range in between."""
    cuts = sorted(draw(st.sets(st.integers(1, num_layers - 1), max_size=3)))
    bounds = [0, *cuts, num_layers]
    slices = []
    for a, b in zip(bounds, bounds[1:]):
        slices.append({"sources": [{"model": "base", "layer_range": [a, b]}]})
        for _ in range(draw(st.integers(0, 2))):
            x = draw(st.integers(0, num_layers))
            y = draw(st.integers(x, min(num_layers, x + 3)))  # empty ranges included
            scale = [dict(c) for c in ZERO_DUPLICATE]
            slices.append({"sources": [{"model": "base", "layer_range": [x, y],
                                        "parameters": {"scale": scale}}]})
    return _to_plan(slices)


FILTERS = ["o_proj", "down_proj", "q_proj", "mlp", "self_attn", "layers.1", "norm", "embed",
           "lm_head", "proj", "bias"]
VALUES = st.sampled_from([0.0, 0.5, 1.0, 2.0, -1.0, 0.25])


@st.composite
def scale_settings(draw):
    kind = draw(st.sampled_from(["scalar", "gradient", "filters"]))
    if kind == "scalar":
        return draw(VALUES)
    if kind == "gradient":
        return draw(st.lists(VALUES, min_size=2, max_size=3))
    conds = [{"filter": draw(st.sampled_from(FILTERS)),
              "value": draw(st.one_of(VALUES, st.lists(VALUES, min_size=2, max_size=2)))}
             for _ in range(draw(st.integers(1, 3)))]
    if draw(st.booleans()):
        conds.append({"value": draw(VALUES)})
    return conds


@st.composite
def any_plans(draw, num_layers: int) -> Plan:
    """Valid passthrough configs: repeated and empty ranges, scales at every precedence level."""
    slices = []
    for _ in range(draw(st.integers(1, 4))):
        a = draw(st.integers(0, num_layers))
        b = draw(st.integers(a, num_layers))
        source = {"model": "base", "layer_range": [a, b]}
        if draw(st.booleans()):
            source["parameters"] = {"scale": draw(scale_settings())}
        s = {"sources": [source]}
        if draw(st.integers(0, 3)) == 0:
            s["parameters"] = {"scale": draw(scale_settings())}
        slices.append(s)
    if all(s["sources"][0]["layer_range"][0] == s["sources"][0]["layer_range"][1] for s in slices):
        slices.append({"sources": [{"model": "base", "layer_range": [0, num_layers]}]})
    top = {"parameters": {"scale": draw(scale_settings())}} if draw(st.integers(0, 3)) == 0 else {}
    return _to_plan(slices, **top)
