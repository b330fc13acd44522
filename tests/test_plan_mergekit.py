"""mergekit is the oracle of uplab's plan schema and scale resolver (harness/plan_schema.py).

Plans are parsed without mergekit (it imports torch); these differential tests hold the mirror
to mergekit itself on generated configs: the schema accepts exactly what
`MergeConfiguration.model_validate` accepts (unknown keys, bad values and model names
included), `parse_plan` never accepts what mergekit rejects, every scale resolves to mergekit's
`resolve_parameter` through its own `ConfigReader` precedence (source, slice, global; first
matching filter; gradients at t), and the static method names are mergekit's registry.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
import yaml
from hypothesis import example, given, settings
from hypothesis import strategies as st
from mergekit.config import ConfigReader
from mergekit.config import MergeConfiguration as TheirConfig
from mergekit.merge_methods import get as get_merge_method
from mergekit.merge_methods import registered_methods
from mergekit.parameter_resolver import resolve_parameter as their_resolve
from pydantic import BaseModel

from harness import arch as arch_facts
from harness.errors import UplabError
from harness.plan import parse_plan
from harness.plan_schema import MERGE_METHODS
from harness.plan_schema import MergeConfiguration as OurConfig
from harness.plan_schema import resolve_parameter as our_resolve

SCALE = next(p for p in get_merge_method("passthrough").spec.parameters if p.name == "scale")
FACTS = arch_facts.get("mistral")
DEPTH = 14
MANY = settings(max_examples=200, deadline=None, database=None, derandomize=True)
FEW = settings(max_examples=100, deadline=None, database=None, derandomize=True)

# -- generated configs ----------------------------------------------------------------------------

FILTERS = ["o_proj", "down_proj", "mlp", "self_attn", "proj", "norm", "layers.1", "layers.1.",
           "layers.12.", "embed", "lm_head", "*", "", "nothing"]
NUMBERS = st.one_of(st.integers(-3, 3), st.floats(-4, 4, allow_nan=False, width=32))
ODD_SCALARS = st.one_of(st.booleans(), st.sampled_from(["abc", "1e-3", "0.5", "", "nan"]))


def mostly(good, bad):
    """`good`, and `bad` one time in sixteen: about half the generated configs validate."""
    return st.integers(0, 15).flatmap(lambda i: bad if i == 5 else good)  # 0 and 15 come often


def settings_of(scalar, *, bad: bool):
    """A parameter's setting: a scalar, a gradient, a filtered value, or a list of them."""
    gradient = st.lists(scalar, min_size=0 if bad else 2, max_size=4)
    value = st.one_of(scalar, gradient)
    cond = st.fixed_dictionaries({"value": value},
                                 optional={"filter": st.one_of(st.sampled_from(FILTERS), st.none())})
    if bad:  # an unknown key (dropped), a filter that is no string, no value
        cond = mostly(cond, st.one_of(cond.map(lambda c: {**c, "note": "x"}),
                                      st.fixed_dictionaries({"value": value, "filter": st.integers(0, 3)}),
                                      st.fixed_dictionaries({"filter": st.sampled_from(FILTERS)})))
    good = st.one_of(scalar, gradient, cond, st.lists(cond, min_size=0 if bad else 1, max_size=3))
    if not bad:
        return good
    return mostly(good, st.one_of(st.lists(st.one_of(cond, scalar), min_size=2, max_size=3),
                                  st.none(), st.fixed_dictionaries({})))


def parameters(scalar, *, bad: bool):
    """None, or a block with `scale` (what passthrough reads) and sometimes `weight` (ignored)."""
    scaled = st.fixed_dictionaries({"scale": settings_of(scalar, bad=bad)},
                                   optional={"weight": settings_of(scalar, bad=bad)})
    other = st.fixed_dictionaries({}, optional={"weight": settings_of(scalar, bad=bad)})
    good = st.one_of(scaled, st.none(), other)  # hypothesis favours the first
    return mostly(good, st.sampled_from([["scale"], "scale"])) if bad else good


def ranges(*, bad: bool):
    good = st.integers(0, DEPTH - 1).flatmap(lambda a: st.tuples(st.just(a), st.integers(a + 1, DEPTH)))
    good = mostly(good.map(list), st.integers(0, DEPTH).map(lambda a: [a, a]))  # some empty ranges
    if not bad:
        return good
    return mostly(good, st.one_of(
        st.tuples(st.integers(-2, DEPTH + 2), st.integers(-2, DEPTH + 2)).map(list),
        st.sampled_from([["a", 2], [1.5, 3], [1], [0, 1, 2], "0-2", [True, 2], ["1", "3"]])))


def slices(scalar, *, bad: bool):
    model = st.just("m")
    if bad:
        model = mostly(model, st.sampled_from(["m@main", "/models/m", "m+lora", "a@b@c", "a+b+c", 5]))
    source = st.fixed_dictionaries({"model": model, "layer_range": ranges(bad=bad),
                                    "parameters": parameters(scalar, bad=bad)})
    extra = {}
    if bad:
        source = mostly(source, st.one_of(source.map(lambda s: {**s, "extra": 1}),
                                          source.map(lambda s: {k: v for k, v in s.items() if k != "model"})))
        extra = {"residual_weight": mostly(NUMBERS, st.just("x")),
                 "base_model": mostly(st.just("m"), st.just("a+b+c"))}
    sources = st.lists(source, min_size=1, max_size=1)
    if bad:
        sources = mostly(sources, st.lists(source, min_size=0, max_size=2))
    one = st.fixed_dictionaries({"sources": sources, "parameters": parameters(scalar, bad=bad)},
                                optional=extra)
    return st.lists(one, min_size=1, max_size=4)


TOP_EXTRAS = {
    "dtype": st.sampled_from(["bfloat16", "float16", 3]),
    "out_dtype": st.sampled_from(["float32", None]),
    "base_model": st.sampled_from(["m", "m@rev", "a@b@c"]),
    "tokenizer_source": st.sampled_from(["union", "base", "m", "a+b+c", None, 7]),
    "tokenizer": st.sampled_from([None, {"source": "union"}, {"source": "m", "pad_to_multiple_of": 8},
                                  {"tokens": {"<x>": {"source": {"kind": "zero"}}}},
                                  {"tokens": {"<x>": {"source": {"kind": "zero", "model": "a+b+c"}}}},
                                  {"tokens": {"<x>": {"source": {"kind": "model_token", "model": "m"}}}},
                                  {"tokens": {"<x>": {"source": {"kind": "model_token", "model": "m",
                                                                 "token": "a"}}}},
                                  {"source": "x", "unknown": 1}]),
    "chat_template": st.sampled_from(["chatml", None]),
    "models": st.sampled_from([None, [], [{"model": "m"}]]),
    "modules": st.sampled_from([None, {"decoder": {"slices": None, "models": None}}]),
    "note": st.just("an unknown key"),
}


@st.composite
def raw_configs(draw, *, bad: bool = True):
    """A YAML mapping as `yaml.safe_load` returns it: passthrough plans, some of them broken
    (bad=True: odd values, model names, keys and methods) or all of them valid and numeric."""
    scalar = mostly(NUMBERS, ODD_SCALARS) if bad else NUMBERS
    method = st.just("passthrough")
    if bad:
        method = mostly(method, st.sampled_from(["slerp", 3, None]))
    raw = {"merge_method": draw(method), "slices": draw(slices(scalar, bad=bad))}
    raw["parameters"] = draw(parameters(scalar, bad=bad))
    if bad:
        if raw["merge_method"] is None:
            del raw["merge_method"]
        raw["slices"] = draw(mostly(st.just(raw["slices"]), st.sampled_from([[], None, "x"])))
        for key in draw(st.lists(st.sampled_from(sorted(TOP_EXTRAS)), max_size=2, unique=True)):
            raw[key] = draw(TOP_EXTRAS[key])
    return raw


def outcome(parse, raw):
    """The parsed value, or None when validation raised (mergekit raises RuntimeError too)."""
    try:
        return parse(raw)
    except Exception:  # noqa: BLE001 - any rejection counts as one
        return None


def normal(value):
    """Models as (class name, fields), recursively: the two schemas' values compared as data."""
    if isinstance(value, BaseModel):
        return type(value).__name__, {k: normal(getattr(value, k)) for k in type(value).model_fields}
    if isinstance(value, dict):
        return {k: normal(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [normal(v) for v in value]
    return type(value).__name__, value


# -- schema -------------------------------------------------------------------------------------

@MANY
@given(raw_configs())
@example({"merge_method": "passthrough", "slices": [{"sources": [{"model": "m", "layer_range": [0, 2],
                                                                   "unknown": 1}], "other": 2}],
          "typo_parameters": {"scale": "abc"}})
@example({"merge_method": "passthrough", "slices": [{"sources": [{"model": "m", "layer_range": [0, 2]}]}],
          "tokenizer": {"tokens": {"<x>": {"source": {"kind": "zero", "model": "a+b+c"}}}}})
@example({"merge_method": "passthrough", "slices": [{"sources": [{"model": "m", "layer_range": [0, 2]}]}],
          "models": [{"model": "m"}]})
@example({"merge_method": "passthrough", "slices": [{"sources": [{"model": "m", "layer_range": ["1", 2.0]}],
          "parameters": {"scale": [{"value": 0.0, "filter": "o_proj", "x": 1}, {"value": [True, "2"]}]}}]})
def test_schema_accepts_exactly_what_mergekit_accepts(raw):
    ours, theirs = outcome(OurConfig.model_validate, raw), outcome(TheirConfig.model_validate, raw)
    assert (ours is None) == (theirs is None), (ours, theirs)
    if ours is not None:
        assert normal(ours) == normal(theirs)


@MANY
@given(raw_configs())
def test_parse_plan_never_accepts_what_mergekit_rejects(raw):
    """parse_plan checks more than mergekit (one source, one model, numeric scales, bounds), so
    it may reject what mergekit takes, never the reverse; and it rejects with one UplabError line."""
    text = yaml.safe_dump(raw, sort_keys=False)
    theirs = outcome(TheirConfig.model_validate, raw)
    try:
        plan = parse_plan(text, origin="cfg.yml")
    except UplabError as e:
        assert "\n" not in str(e) and str(e).startswith("cfg.yml: ")
        return
    assert theirs is not None, f"uplab accepted what mergekit rejects:\n{text}"
    assert normal(plan.config) == normal(theirs)


# -- resolution ---------------------------------------------------------------------------------

def tensor_names(layers) -> list[str]:
    names = [FACTS.layer_tensor(i, p + ".weight") for i in layers for p in FACTS.modules.values()]
    return names + [FACTS.embeddings, FACTS.final_norm, FACTS.lm_head]


def their_scopes(config, out_slice, source, t):
    return ConfigReader(config=config, t=t, slice_out=out_slice).parameter_sources(source.model)


@FEW
@given(raw_configs(), st.lists(st.floats(0, 1), min_size=1, max_size=3), st.sampled_from(["scale", "weight"]))
def test_schema_resolution_equals_mergekit_resolve_parameter(raw, ts, name):
    """Any valid config, any parameter value (strings and booleans too, which mergekit's float
    validator takes or refuses): the same value, or a failure in both."""
    ours, theirs = outcome(OurConfig.model_validate, raw), outcome(TheirConfig.model_validate, raw)
    if ours is None:
        return
    spec = replace(SCALE, name=name)  # the resolver is the same for any parameter
    for ours_slice, their_slice in zip(ours.slices, theirs.slices):
        for ours_src, their_src in zip(ours_slice.sources, their_slice.sources):
            a, b = ours_src.layer_range
            scopes = [s.parameters for s in ours_slice.sources if s.model == ours_src.model]
            scopes += [ours_slice.parameters, ours.parameters]
            for t in [0.0, 1.0, *ts]:
                for tensor in tensor_names(range(max(0, a), min(b, a + 2))):
                    mine = attempt(lambda: our_resolve(name, scopes, tensor_name=tensor, t=t))
                    want = attempt(lambda: their_resolve(
                        spec, their_scopes(theirs, their_slice, their_src, t), tensor_name=tensor, t=t,
                        model=their_src.model))
                    assert mine == want, (tensor, t)


def attempt(call) -> tuple:
    """("value", result) or ("raised",): a failure is an outcome to compare too."""
    try:
        return "value", call()
    except Exception:  # noqa: BLE001 - mergekit fails mid-merge with a ValidationError here
        return ("raised",)


@FEW
@given(raw_configs(bad=False))
def test_every_layer_map_scale_equals_mergekit(raw):
    """Plan level: every scale of the layer map (each output layer's modules at its t, and the
    edge tensors) is mergekit's resolve_parameter through its ConfigReader, for valid plans."""
    text = yaml.safe_dump(raw, sort_keys=False)
    plan = parse_plan(text)
    theirs = TheirConfig.model_validate(yaml.safe_load(plan.text))
    lm = plan.layer_map(DEPTH)

    def expected(slice_index: int, tensor: str, t: float) -> float:
        out_slice = theirs.slices[slice_index]
        value = their_resolve(SCALE, their_scopes(theirs, out_slice, out_slice.sources[0], t),
                              tensor_name=tensor, t=t, model=out_slice.sources[0].model)
        return 1.0 if value is None else value

    for e in lm.layers:
        for short, path in FACTS.modules.items():
            assert e.scales[short] == expected(e.slice, FACTS.layer_tensor(e.source, path + ".weight"), e.t)
    last = len(theirs.slices) - 1
    assert lm.extra_scales == {"embed_tokens": expected(0, FACTS.embeddings, 0.0),
                               "norm": expected(last, FACTS.final_norm, 0.0),
                               "lm_head": expected(last, FACTS.lm_head, 0.0)}


# -- method names -------------------------------------------------------------------------------

def test_merge_method_names_are_mergekits_registry():
    assert sorted(MERGE_METHODS) == sorted(m.spec.name for m in registered_methods())
    assert len(set(MERGE_METHODS)) == len(MERGE_METHODS)


@pytest.mark.parametrize("method", ["slerp", "ties", "linear"])
def test_a_known_non_upscale_method_is_named_so(method):
    with pytest.raises(UplabError, match="a mergekit method, but not an upscale"):
        parse_plan(f"merge_method: {method}\nslices: []\n")
