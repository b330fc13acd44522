"""Plans (DESIGN §3): the seed's configs, mergekit's scale semantics, roles, and bad input (§11)."""

from __future__ import annotations

import pytest
import yaml
from mergekit.config import MergeConfiguration, evaluate_setting
from mergekit.merge_methods import get as get_merge_method
from seed_configs import DIAGRAM_39B, MODEL_CARD, card_blocks, seed_39b, seed_proposed

from harness.errors import UplabError
from harness.layermap import LayerMap
from harness.lint import lint
from harness.plan import check_depth, load_plan, parse_plan

# mergekit's own passthrough `scale` parameter: the oracle the plan's resolver is checked against
_SCALE = next(p for p in get_merge_method("passthrough").spec.parameters if p.name == "scale")


def mergekit_config(plan) -> MergeConfiguration:
    """The plan's YAML parsed by mergekit's own schema."""
    return MergeConfiguration.model_validate(yaml.safe_load(plan.text))

MODULES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj",
           "input_layernorm", "post_attention_layernorm")
ZEROED = {"o_proj", "down_proj"}


def config(*slices, parameters: str | None = None, model: str = "m") -> str:
    """A passthrough config: each slice is (start, end) or (start, end, source_params[, slice_params])
    with the parameter blocks written as YAML flow mappings."""
    lines = ["merge_method: passthrough", "slices:"]
    for s in slices:
        a, b, src, sl = (*s, None, None)[:4]
        lines += ["  - sources:", f"      - model: {model}", f"        layer_range: [{a}, {b}]"]
        if src:
            lines.append(f"        parameters: {src}")
        if sl:
            lines.append(f"    parameters: {sl}")
    if parameters:
        lines.append(f"parameters: {parameters}")
    return "\n".join(lines) + "\n"


def name(layer: int, module: str) -> str:
    path = {"input_layernorm": "input_layernorm", "post_attention_layernorm": "post_attention_layernorm"}
    inner = path.get(module) or (f"self_attn.{module}" if module[0] in "qkvo" else f"mlp.{module}")
    return f"model.layers.{layer}.{inner}.weight"


# -- the seed's configs --------------------------------------------------------------------------

def test_seed_copies_match_the_model_card():
    if not MODEL_CARD.is_file():
        pytest.skip(f"the seed's model card is not beside the repository ({MODEL_CARD})")
    assert card_blocks(MODEL_CARD.read_text()) == [seed_39b(), seed_proposed()]


def test_both_seed_configs_parse_as_written():
    big, proposed = parse_plan(seed_39b()), parse_plan(seed_proposed())
    assert big.ranges() == [(0, 41), (19, 41), (19, 41), (41, 55)]
    assert proposed.ranges() == [(0, 18), (19, 19), (19, 19), (19, 19), (20, 20), (20, 20),
                                 (20, 20), (41, 55)]
    assert big.source_model == proposed.source_model == "unsloth/Mistral-Small-Instruct-2409"


def test_seed_39b_layer_map_at_55_layers():
    lm = parse_plan(seed_39b()).layer_map(55)
    assert lm.num_layers == 99 and lm.source_layers == 55
    assert "".join("0" if r == "orig" else "X" for r in lm.roles()) == DIAGRAM_39B
    assert [e.source for e in lm.layers] == (
        list(range(41)) + list(range(19, 41)) * 2 + list(range(41, 55)))
    for e in lm.layers:
        assert set(e.scales) == set(MODULES)
        if e.role == "dup":
            assert {m: s for m, s in e.scales.items() if s != 1.0} == {"o_proj": 0.0, "down_proj": 0.0}
            assert e.zeroed == ("o_proj", "down_proj")
        else:
            assert set(e.scales.values()) == {1.0}, e
    assert lm.extra_scales == {"embed_tokens": 1.0, "norm": 1.0, "lm_head": 1.0}
    assert lm.indices("dup") == list(range(41, 85))


def test_seed_39b_slice_starts_and_anchors():
    lm = parse_plan(seed_39b()).layer_map(55)
    assert lm.slice_starts() == [41, 63, 85]
    # every duplicate hangs off original layer 40, the last orig before the dup run
    assert {lm.anchor_of(i) for i in lm.indices("dup")} == {40}
    assert lm.anchor_of(40) is None and lm.anchor_of(0) is None and lm.anchor_of(85) is None


def test_seed_proposed_empty_ranges_add_nothing():
    plan = parse_plan(seed_proposed())
    lm = plan.layer_map(56)
    assert lm.num_layers == 32
    assert [e.source for e in lm.layers] == list(range(18)) + list(range(41, 55))
    assert lm.roles() == ["orig"] * 32
    # the output keeps the slice index of the slice that emitted each layer
    assert [e.slice for e in lm.layers] == [0] * 18 + [7] * 14
    assert lm.slice_starts() == [18]


# -- scale semantics: mergekit's ----------------------------------------------------------------

def test_half_open_ranges():
    plan = parse_plan(config((0, 3), (2, 3), (3, 4)))
    assert plan.layer_map(4).num_layers == 5
    assert [e.source for e in plan.layer_map(4).layers] == [0, 1, 2, 2, 3]


def test_scalar_scale_applies_to_every_module():
    lm = parse_plan(config((0, 2), (1, 2, "{scale: 0.5}"))).layer_map(2)
    assert lm.layers[2].scales == {m: 0.5 for m in MODULES}
    assert set(lm.layers[1].scales.values()) == {1.0}


def test_filter_list_first_match_wins():
    src = "{scale: [{filter: proj, value: 0.25}, {filter: o_proj, value: 0.0}, {value: 0.5}]}"
    lm = parse_plan(config((0, 2), (0, 1, src), (1, 2))).layer_map(2)
    dup = lm.layers[2]
    assert dup.scales["o_proj"] == 0.25  # 'proj' came first
    assert dup.scales["q_proj"] == dup.scales["down_proj"] == 0.25
    assert dup.scales["input_layernorm"] == dup.scales["post_attention_layernorm"] == 0.5


def test_filter_matches_the_source_tensor_name_not_the_output_name():
    # the copy of source layer 1 is output layer 4; a filter names the source layer
    lm = parse_plan(config((0, 4), (1, 2, "{scale: [{filter: layers.1., value: 0.0}]}"))).layer_map(4)
    assert lm.layers[4].source == 1
    assert set(lm.layers[4].scales.values()) == {0.0}
    lm = parse_plan(config((0, 4), (1, 2, "{scale: [{filter: layers.4., value: 0.0}]}"))).layer_map(4)
    assert set(lm.layers[4].scales.values()) == {1.0}


def test_layer_filter_is_a_substring():
    dotted = parse_plan(config((0, 20, "{scale: [{filter: layers.1., value: 0.0}]}"))).layer_map(20)
    assert [e.index for e in dotted.layers if e.zeroed] == [1]
    bare = parse_plan(config((0, 20, "{scale: [{filter: layers.1, value: 0.0}]}"))).layer_map(20)
    assert [e.index for e in bare.layers if e.zeroed] == [1] + list(range(10, 20))
    assert all(len(e.zeroed) == len(MODULES) for e in bare.layers if e.zeroed)


def test_precedence_source_over_slice_over_global():
    three = config((0, 2, "{scale: 0.3}", "{scale: 0.2}"), parameters="{scale: 0.1}")
    two = config((0, 2, None, "{scale: 0.2}"), parameters="{scale: 0.1}")
    one = config((0, 2), parameters="{scale: 0.1}")
    none = config((0, 2))
    for text, expected in [(three, 0.3), (two, 0.2), (one, 0.1), (none, 1.0)]:
        plan = parse_plan(text)
        assert plan.scale(0, name(0, "q_proj"), 0.0) == pytest.approx(expected), text
        assert list(plan.layer_map(2).layers[1].scales.values()) == pytest.approx([expected] * 9)


def test_unmatched_filter_list_falls_through_to_the_next_scope():
    text = config(
        (0, 2, "{scale: [{filter: o_proj, value: 0.0}]}", "{scale: [{filter: down_proj, value: 0.5}]}"),
        parameters="{scale: 0.25}")
    scales = parse_plan(text).layer_map(2).layers[0].scales
    assert scales["o_proj"] == 0.0  # source scope
    assert scales["down_proj"] == 0.5  # nothing in the source matched: the slice's
    assert scales["q_proj"] == scales["input_layernorm"] == 0.25  # neither: the global


def test_gradient_interpolates_across_the_slice():
    lm = parse_plan(config((0, 5, "{scale: [0.0, 1.0]}"))).layer_map(5)
    assert [e.t for e in lm.layers] == pytest.approx([0, 0.25, 0.5, 0.75, 1.0])
    assert [e.scales["q_proj"] for e in lm.layers] == pytest.approx([0, 0.25, 0.5, 0.75, 1.0])
    lm = parse_plan(config((0, 5, "{scale: [0.0, 1.0, 0.0]}"))).layer_map(5)
    assert [e.scales["o_proj"] for e in lm.layers] == pytest.approx([0, 0.5, 1.0, 0.5, 0])


def test_gradient_in_a_one_layer_slice_takes_t_1():
    lm = parse_plan(config((0, 2), (1, 2, "{scale: [0.0, 1.0]}"))).layer_map(2)
    assert lm.layers[2].t == 1.0
    assert lm.layers[2].scales["o_proj"] == 1.0


def test_filtered_gradient():
    src = "{scale: [{filter: o_proj, value: [1.0, 0.0]}, {value: 1.0}]}"
    lm = parse_plan(config((0, 3, src))).layer_map(3)
    assert [e.scales["o_proj"] for e in lm.layers] == pytest.approx([1.0, 0.5, 0.0])
    assert [e.scales["down_proj"] for e in lm.layers] == [1.0, 1.0, 1.0]


@pytest.mark.parametrize("setting, tensor, t", [
    ([{"filter": "o_proj", "value": 0.0}, {"filter": "down_proj", "value": 0.0}, {"value": 1.0}],
     name(19, "o_proj"), 0.0),
    ([{"filter": "o_proj", "value": 0.0}, {"filter": "down_proj", "value": 0.0}, {"value": 1.0}],
     name(19, "gate_proj"), 0.0),
    ([{"filter": "layers.1", "value": 0.0}, {"value": 1.0}], name(13, "v_proj"), 0.0),
    ([{"filter": "layers.1.", "value": 0.0}, {"value": 1.0}], name(13, "v_proj"), 0.0),
    ([0.0, 1.0], name(2, "up_proj"), 0.75),
    ([0.0, 1.0, 0.0], name(2, "up_proj"), 0.25),
    ([{"filter": "mlp", "value": [0.0, 1.0]}, {"value": 0.5}], name(2, "down_proj"), 0.5),
    (0.7, name(0, "k_proj"), 0.3),
], ids=["zero-o", "zero-gate", "bare-layer-filter", "dotted-layer-filter", "gradient",
        "three-point-gradient", "filtered-gradient", "scalar"])
def test_scale_equals_mergekit_evaluate_setting(setting, tensor, t):
    """Differential: one scope, resolved by mergekit's own evaluate_setting and by Plan.scale."""
    params = yaml.safe_dump({"scale": setting}, default_flow_style=True).strip()
    plan = parse_plan(config((0, 20, params)))
    raw = mergekit_config(plan).slices[0].sources[0].parameters["scale"]  # mergekit's objects
    expected = evaluate_setting(tensor, raw, t, validate=_SCALE.validate)
    assert plan.scale(0, tensor, t) == pytest.approx(1.0 if expected is None else expected)


def test_layer_map_equals_mergekit_config_reader():
    """Differential over every scope: mergekit's own precedence chain (ConfigReader, as its
    planner resolves each tensor with the source tensor's name and the layer's t) against ours."""
    from mergekit.config import ConfigReader
    from mergekit.parameter_resolver import resolve_parameter

    text = config(
        (0, 3, None, "{scale: [{filter: layers.1, value: 0.5}]}"),
        (1, 3, "{scale: [{filter: o_proj, value: 0.0}, {filter: down_proj, value: [0.0, 1.0]}]}",
         "{scale: [{filter: mlp, value: 0.25}]}"),
        (10, 13, "{scale: [0.2, 0.8]}"),
        (3, 12),
        parameters="{scale: [{filter: input_layernorm, value: 2.0}, {filter: layers.11, value: 0.75}]}",
    )
    plan = parse_plan(text)
    lm = plan.layer_map(13)
    assert lm.num_layers == 3 + 2 + 3 + 9
    theirs = mergekit_config(plan)
    checked = 0
    for e in lm.layers:
        out_slice = theirs.slices[e.slice]
        src = out_slice.sources[0]
        reader = ConfigReader(config=theirs, t=e.t, slice_out=out_slice)
        for module in MODULES:
            expected = resolve_parameter(_SCALE, reader.parameter_sources(src.model),
                                         tensor_name=name(e.source, module), t=e.t, model=src.model)
            assert e.scales[module] == pytest.approx(1.0 if expected is None else expected), (e, module)
            checked += 1
    assert checked == 17 * 9
    # the scopes really were exercised: every precedence level decides some module somewhere
    values = {s for e in lm.layers for s in e.scales.values()}
    assert {0.0, 0.25, 0.5, 2.0, 0.75, 0.2, 0.8, 1.0} <= {round(v, 6) for v in values}


# -- roles ---------------------------------------------------------------------------------------

def test_orig_is_the_first_unscaled_copy():
    zero = "{scale: [{filter: o_proj, value: 0.0}, {filter: down_proj, value: 0.0}, {value: 1.0}]}"
    lm = parse_plan(config((0, 2, zero), (0, 4))).layer_map(4)
    assert [e.source for e in lm.layers] == [0, 1, 0, 1, 2, 3]
    assert lm.roles() == ["dup", "dup", "orig", "orig", "orig", "orig"]
    assert lm.indices("orig") == [2, 3, 4, 5]
    assert lm.anchor_of(0) is None and lm.anchor_of(1) is None


def test_when_every_copy_is_scaled_the_first_is_orig():
    lm = parse_plan(config((0, 2, "{scale: 0.5}"), (0, 2, "{scale: 0.5}"))).layer_map(2)
    assert lm.roles() == ["orig", "orig", "dup", "dup"]


def test_interleaved_anchors_and_slice_starts():
    zero = "{scale: [{filter: o_proj, value: 0.0}, {filter: down_proj, value: 0.0}, {value: 1.0}]}"
    lm = parse_plan(config((0, 2), (1, 2, zero), (1, 2, zero), (2, 3), (2, 3, zero), (3, 4))).layer_map(4)
    assert lm.roles() == ["orig", "orig", "dup", "dup", "orig", "dup", "orig"]
    assert [lm.anchor_of(i) for i in range(7)] == [None, None, 1, 1, None, 4, None]
    assert lm.slice_starts() == [2, 3, 4, 5, 6]
    assert [lm.source_of(i) for i in range(7)] == [0, 1, 1, 1, 2, 2, 3]


def test_identity_layer_map():
    lm = LayerMap.identity(3)
    assert lm.roles() == ["orig"] * 3 and lm.slice_starts() == [] and lm.num_layers == 3


# -- bad input -----------------------------------------------------------------------------------

ONE = "  - sources:\n      - model: m\n        layer_range: [0, 2]\n"
BAD = {
    "malformed-yaml": ("merge_method: passthrough\nslices:\n - sources:\n   - model: m\n  layer_range: [0, 1]\n",
                       r"malformed YAML at line 5"),
    "unclosed-bracket": ("merge_method: passthrough\nslices: [\n", r"malformed YAML at line \d+"),
    "not-a-mapping": ("- merge_method: passthrough\n", r"YAML mapping.*list"),
    "empty-file": ("", r"YAML mapping"),
    "no-merge-method": ("slices:\n" + ONE, r"no merge_method"),
    "unknown-method": ("merge_method: frobnicate\nslices:\n" + ONE, r"'frobnicate' is unknown to mergekit"),
    "known-non-passthrough": ("merge_method: slerp\nslices:\n" + ONE,
                              r"'slerp' is a mergekit method, but not an upscale"),
    "missing-slices": ("merge_method: passthrough\nmodels:\n  - model: m\n", r"slices"),
    "empty-slices": ("merge_method: passthrough\nslices: []\n", r"slices"),
    "reversed-range": (config((5, 2)), r"\[5, 2\] is reversed"),
    "negative-range": (config((-1, 2)), r"\[-1, 2\] is negative"),
    "two-sources": ("merge_method: passthrough\nslices:\n" + ONE + "      - model: m\n        layer_range: [0, 2]\n",
                    r"slice 0 has 2 sources"),
    "two-models": (config((0, 2)) + "  - sources:\n      - model: n\n        layer_range: [0, 2]\n",
                   r"2 different models"),
    "range-not-int": (config(("a", 2)), r"slice 0 layer_range \['a', 2\] is not two whole numbers"),
    "no-model": ("merge_method: passthrough\nslices:\n  - sources:\n      - layer_range: [0, 2]\n",
                 r"slices\.0\.sources\.0\.model"),
}


@pytest.mark.parametrize("text, pattern", BAD.values(), ids=BAD.keys())
def test_bad_config_is_one_line_naming_the_problem(text, pattern):
    with pytest.raises(UplabError, match=pattern) as info:
        parse_plan(text, origin="cfg.yml")
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("cfg.yml: ")


def test_non_numeric_scale_is_a_plan_error():
    """`scale: abc` must be rejected as bad input, not escape as a pydantic ValidationError."""
    with pytest.raises(UplabError, match="scale"):
        plan = parse_plan(config((0, 2, "{scale: abc}")), origin="cfg.yml")
        plan.layer_map(2)


def test_range_past_the_source_depth():
    plan = parse_plan(config((0, 41), (41, 56)), origin="cfg.yml")
    check_depth(plan, 56)  # fine at 56
    with pytest.raises(UplabError, match=r"slice 1 layer_range \[41, 56\] reaches past the source's 55") as info:
        check_depth(plan, 55)
    assert "\n" not in str(info.value)
    errors = [f for f in lint(plan, 55) if f.level == "error"]
    assert [f.code for f in errors] == ["range-past-end"]


def test_load_plan_reads_a_file(tmp_path):
    path = tmp_path / "39b.yml"
    path.write_text(seed_39b())
    plan = load_plan(path)
    assert plan.origin == str(path) and plan.text == seed_39b()


@pytest.mark.parametrize("kind", ["missing", "directory", "binary"])
def test_load_plan_unreadable(tmp_path, kind):
    path = tmp_path / "cfg.yml"
    if kind == "directory":
        path.mkdir()
    elif kind == "binary":
        path.write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(UplabError, match={"missing": "no such config file", "directory": "cannot read",
                                          "binary": "cannot read"}[kind]) as info:
        load_plan(path)
    assert "\n" not in str(info.value) and str(path) in str(info.value)
