"""Strategies (DESIGN §3): the layouts they emit, as mergekit configs, and their bad arguments."""

from __future__ import annotations

import pytest
import yaml
from seed_configs import DIAGRAM_39B, seed_39b

from harness import render, strategies
from harness.build.reference import mergekit_config
from harness.errors import UplabError
from harness.plan import parse_plan


def layout(plan, n):
    lm = plan.layer_map(n)
    return render.diagram(lm), [e.source for e in lm.layers]


def test_contiguous_is_the_seeds_39b_layout():
    plan = strategies.contiguous(19, 41, num_layers=55, copies=2,
                                 model="unsloth/Mistral-Small-Instruct-2409")
    seed = parse_plan(seed_39b())
    assert plan.ranges() == seed.ranges()
    assert plan.layer_map(55) == seed.layer_map(55)
    assert render.diagram(plan.layer_map(55)) == DIAGRAM_39B
    # and the YAML means the same to mergekit's own schema (and to uplab's mirror of it)
    assert mergekit_config(plan).model_dump() == mergekit_config(seed).model_dump()
    assert plan.config.model_dump() == seed.config.model_dump()


def test_interleaved():
    diagram, sources = layout(strategies.interleaved(4, 7, num_layers=9, copies=2), 9)
    assert diagram == "0000" + "0XX" * 3 + "00"
    assert sources == [0, 1, 2, 3, 4, 4, 4, 5, 5, 5, 6, 6, 6, 7, 8]


def test_interleaved_the_seed_proposal_done_right():
    """The card's proposed technique: each of layers 19-40 followed by two zeroed copies."""
    plan = strategies.interleaved(19, 41, num_layers=55, copies=2)
    lm = plan.layer_map(55)
    assert render.diagram(lm) == "0" * 19 + "0XX" * 22 + "0" * 14
    assert lm.num_layers == 55 + 44
    assert all(lm.anchor_of(i) == i - 1 - (lm.layers[i - 1].role == "dup") for i in lm.indices("dup"))


def test_single():
    assert layout(strategies.single(3, num_layers=6), 6) == ("0000X00", [0, 1, 2, 3, 3, 4, 5])
    assert layout(strategies.single(0, num_layers=3, copies=2), 3) == ("0XX00", [0, 0, 0, 1, 2])
    assert layout(strategies.single(2, num_layers=3), 3) == ("000X", [0, 1, 2, 2])


def test_block():
    diagram, sources = layout(strategies.block(2, 1, 5, num_layers=6), 6)
    assert diagram == "000XX00XX0"
    assert sources == [0, 1, 2, 1, 2, 3, 4, 3, 4, 5]
    # a ragged last block, two copies each
    diagram, sources = layout(strategies.block(3, 0, 4, num_layers=4, copies=2), 4)
    assert diagram == "000XXXXXX0XX"
    assert sources == [0, 1, 2, 0, 1, 2, 0, 1, 2, 3, 3, 3]


def test_every_is_llama_pro():
    diagram, sources = layout(strategies.every(3, num_layers=8), 8)
    assert diagram == "000X000X00X"
    assert sources == [0, 1, 2, 2, 3, 4, 5, 5, 6, 7, 7]
    assert layout(strategies.every(4, num_layers=4), 4) == ("0000X", [0, 1, 2, 3, 3])


def test_duplicates_are_zeroed_and_originals_untouched():
    for plan, n in [(strategies.contiguous(1, 3, num_layers=4), 4), (strategies.every(2, num_layers=4), 4),
                    (strategies.block(2, 0, 4, num_layers=4), 4)]:
        lm = plan.layer_map(n)
        for e in lm.layers:
            assert e.zeroed == (() if e.role == "orig" else ("o_proj", "down_proj")), (plan.origin, e)
        assert set(lm.extra_scales.values()) == {1.0}


def test_adjacent_original_ranges_merge_into_one_slice():
    plan = strategies.interleaved(2, 4, num_layers=5, copies=1)
    assert plan.ranges() == [(0, 3), (2, 3), (3, 4), (3, 4), (4, 5)]


def test_emitted_yaml_is_a_mergekit_config_with_a_header():
    plan = strategies.every(2, num_layers=4, model="/models/base")
    assert plan.text.startswith("# uplab strategy: every(n=2)\n")
    raw = yaml.safe_load(plan.text)
    assert raw["merge_method"] == "passthrough"
    assert {s["sources"][0]["model"] for s in raw["slices"]} == {"/models/base"}
    assert parse_plan(plan.text).ranges() == plan.ranges()


BAD = {
    "reversed": (lambda: strategies.contiguous(5, 3, num_layers=8), "range"),
    "empty": (lambda: strategies.interleaved(3, 3, num_layers=8), "range"),
    "past-end": (lambda: strategies.contiguous(2, 9, num_layers=8), "num_layers"),
    "negative": (lambda: strategies.block(1, -1, 3, num_layers=8), "range"),
    "zero-copies": (lambda: strategies.contiguous(1, 3, num_layers=8, copies=0), "copies"),
    "zero-k": (lambda: strategies.block(0, 1, 3, num_layers=8), "k"),
    "single-past-end": (lambda: strategies.single(8, num_layers=8), "range"),
    "single-negative": (lambda: strategies.single(-1, num_layers=8), "range"),
    "every-zero": (lambda: strategies.every(0, num_layers=8), "every"),
    "every-too-big": (lambda: strategies.every(9, num_layers=8), "every"),
}


@pytest.mark.parametrize("make, word", BAD.values(), ids=BAD.keys())
def test_bad_arguments(make, word):
    with pytest.raises(UplabError, match=word) as info:
        make()
    assert "\n" not in str(info.value)
