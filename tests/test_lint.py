"""The linter (DESIGN §3): each rule fires on a minimal config and stays quiet on a clean one."""

from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st
from seed_configs import seed_39b, seed_proposed

from harness import strategies
from harness.lint import Finding, errors, lint
from harness.plan import parse_plan

ZERO = "{scale: [{filter: o_proj, value: 0.0}, {filter: down_proj, value: 0.0}, {value: 1.0}]}"


def config(*slices, parameters: str | None = None) -> str:
    """Slices as (start, end) or (start, end, source parameters as a YAML flow mapping)."""
    lines = ["merge_method: passthrough", "slices:"]
    for s in slices:
        lines += ["  - sources:", "      - model: m", f"        layer_range: [{s[0]}, {s[1]}]"]
        if len(s) > 2:
            lines.append(f"        parameters: {s[2]}")
    if parameters:
        lines.append(f"parameters: {parameters}")
    return "\n".join(lines) + "\n"


def codes(findings: list[Finding]) -> list[str]:
    return [f.code for f in findings]


def run(text: str, num_layers: int) -> list[Finding]:
    return lint(parse_plan(text), num_layers)


CLEAN = {
    "one-slice": (config((0, 4)), 4),
    "contiguous-zeroed": (config((0, 3), (1, 3, ZERO), (3, 4)), 4),
    "layer-filter-with-dot": (config((0, 12, "{scale: [{filter: layers.1., value: 0.0}, {value: 1.0}]}")), 12),
    "block-filter-mlp": (config((0, 2), (1, 2, "{scale: [{filter: mlp, value: 0.0}, {value: 1.0}]}"), (2, 4)), 4),
    "scale-on-a-middle-slice": (config((0, 2), (1, 2, "{scale: 0.0}"), (2, 4)), 4),
    "global-filtered-scale": (config((0, 4), parameters="{scale: [{filter: o_proj, value: 0.5}, {value: 1.0}]}"), 4),
}


@pytest.mark.parametrize("text, n", CLEAN.values(), ids=CLEAN.keys())
def test_clean_configs_have_no_findings(text, n):
    assert run(text, n) == []


FIRES = {
    "range-past-end": (config((0, 5)), 4, "error", ["[0, 5]", "4 layers", "[3, 4]"]),
    "empty-range": (config((0, 4), (2, 2)), 4, "warning", ["slice 1", "[2, 2]", "[2, 3]"]),
    "layer-dropped": (config((0, 2), (3, 4)), 4, "warning", ["source layer 2 ", "drops it"]),
    "unused-parameter": (config((0, 4, "{weight: 0.5}")), 4, "warning", ["'weight'", "slice 0 source"]),
    "filter-matches-nothing": (config((0, 4, "{scale: [{filter: oproj, value: 0.0}, {value: 1.0}]}")), 4,
                               "warning", ["'oproj'", "model.layers.0."]),
    "filter-too-broad": (config((0, 12, "{scale: [{filter: layers.1, value: 0.0}, {value: 1.0}]}")), 12,
                         "warning", ["'layers.1'", "10-11", "'layers.1.'"]),
    # a filter that names an edge tensor on purpose also earns scale-hits-edges (tested below)
    "filter-hits-edges": (config((0, 2), (2, 4, "{scale: [{filter: lm_head, value: 1.0}, {value: 1.0}]}")),
                          4, "warning", ["'lm_head'", "also matches lm_head"]),
    "scale-hits-edges": (config((0, 2, "{scale: 0.5}"), (2, 4)), 4, "warning",
                         ["0.5", "model.embed_tokens.weight", "first slice"]),
}


@pytest.mark.parametrize("code, case", FIRES.items(), ids=FIRES.keys())
def test_each_rule_fires_on_a_minimal_config(code, case):
    text, n, level, words = case
    found = run(text, n)
    assert codes(found) == [code], found
    assert found[0].level == level
    for w in words:
        assert w in found[0].message, (w, found[0].message)
    assert str(found[0]).startswith(f"{level}: [{code}] ")
    assert errors(found) == (found if level == "error" else [])


def test_filter_too_broad_across_module_types():
    found = run(config((0, 4, "{scale: [{filter: proj, value: 0.0}, {value: 1.0}]}")), 4)
    assert codes(found) == ["filter-too-broad"]
    assert "7 module types" in found[0].message


def test_scale_on_the_last_slice_hits_norm_and_lm_head():
    found = run(config((0, 2), (2, 4, "{scale: 0.0}")), 4)
    assert codes(found) == ["scale-hits-edges", "scale-hits-edges"]
    assert "model.norm.weight" in found[0].message and "lm_head.weight" in found[1].message
    assert all("slice 1" in f.message and "last slice" in f.message for f in found)


def test_single_slice_scale_names_the_right_edge_for_each_tensor():
    """One slice is both first and last: the norm/lm_head findings must not say 'embeddings'."""
    found = run(config((0, 4, "{scale: 0.5}")), 4)
    by_tensor = {t: f.message for f in found
                 for t in ("model.embed_tokens.weight", "model.norm.weight", "lm_head.weight")
                 if t in f.message}
    assert set(by_tensor) == {"model.embed_tokens.weight", "model.norm.weight", "lm_head.weight"}
    assert "embeddings with the first" in by_tensor["model.embed_tokens.weight"]
    for tensor in ("model.norm.weight", "lm_head.weight"):
        assert "embeddings" not in by_tensor[tensor], by_tensor[tensor]
        assert "lm_head with the last" in by_tensor[tensor], by_tensor[tensor]


def test_filter_on_an_edge_tensor_warns_twice():
    found = run(config((0, 2, "{scale: [{filter: embed, value: 0.5}, {value: 1.0}]}"), (2, 4)), 4)
    assert codes(found) == ["filter-hits-edges", "scale-hits-edges"]
    assert "embed_tokens" in found[0].message and "model.embed_tokens.weight" in found[1].message


def test_global_scalar_scale_hits_both_edges():
    found = run(config((0, 2), (1, 2), (2, 4), parameters="{scale: 0.0}"), 4)
    assert codes(found) == ["scale-hits-edges"] * 3


# -- the seed's configs --------------------------------------------------------------------------

def test_seed_39b_is_clean_at_55_layers():
    assert run(seed_39b(), 55) == []


def test_seed_39b_at_56_layers_drops_the_last():
    found = run(seed_39b(), 56)
    assert codes(found) == ["layer-dropped"]
    assert "source layer 55 is in no slice" in found[0].message


def test_seed_39b_past_the_end_at_54_layers():
    found = run(seed_39b(), 54)
    assert codes(errors(found)) == ["range-past-end"]
    assert "slice 3 layer_range [41, 55]" in errors(found)[0].message


def test_seed_proposed_at_56_layers():
    found = run(seed_proposed(), 56)
    empty = [f for f in found if f.code == "empty-range"]
    assert [f.message.split(" layer_range")[0] for f in empty] == [f"slice {i}" for i in range(1, 7)]
    assert sum("[19, 19]" in f.message for f in empty) == 3
    assert sum("[20, 20]" in f.message for f in empty) == 3
    dropped = [f for f in found if f.code == "layer-dropped"]
    assert len(dropped) == 1
    # [0, 18) stops before 18, the "REPEAT UNTIL 41" is a comment, and [41, 55) misses the 56th
    assert "18-40, 55" in dropped[0].message
    assert not errors(found)
    assert codes(found) == ["empty-range"] * 6 + ["layer-dropped"]


# -- every strategy lints clean ------------------------------------------------------------------

@st.composite
def strategy_plans(draw):
    num_layers = draw(st.integers(1, 40))
    kind = draw(st.sampled_from(sorted(strategies.STRATEGIES)))
    copies = draw(st.integers(1, 3))
    if kind == "every":
        return strategies.every(draw(st.integers(1, num_layers)), num_layers=num_layers), num_layers
    if kind == "single":
        layer = draw(st.integers(0, num_layers - 1))
        return strategies.single(layer, num_layers=num_layers, copies=copies), num_layers
    start = draw(st.integers(0, num_layers - 1))
    end = draw(st.integers(start + 1, num_layers))
    if kind == "block":
        k = draw(st.integers(1, end - start + 1))
        return strategies.block(k, start, end, num_layers=num_layers, copies=copies), num_layers
    return strategies.STRATEGIES[kind](start, end, num_layers=num_layers, copies=copies), num_layers


@settings(max_examples=50, deadline=None, derandomize=True)
@given(strategy_plans())
def test_every_strategy_output_lints_clean(case):
    plan, num_layers = case
    assert lint(plan, num_layers) == [], plan.text
    # and it keeps every source layer, with exactly one orig per source layer
    lm = plan.layer_map(num_layers)
    assert sorted(e.source for e in lm.layers if e.role == "orig") == list(range(num_layers))
