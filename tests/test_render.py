"""Text views of a layer map: the seed's 000XX0 line, its percentages, the source view, the table."""

from __future__ import annotations

import pytest
from seed_configs import DIAGRAM_39B, seed_39b, seed_proposed

from harness import render, strategies
from harness.layermap import LayerMap
from harness.plan import parse_plan


@pytest.fixture(scope="module")
def lm39():
    return parse_plan(seed_39b()).layer_map(55)


def test_diagram_of_the_39b(lm39):
    assert render.diagram(lm39) == DIAGRAM_39B
    assert len(render.diagram(lm39)) == 99


def test_segments_of_the_39b(lm39):
    segs = render.segments(lm39)
    assert [(r, a, b) for r, a, b, _ in segs] == [("orig", 0, 40), ("dup", 41, 84), ("orig", 85, 98)]
    assert [p for *_, p in segs] == pytest.approx([100 * 41 / 99, 100 * 44 / 99, 100 * 14 / 99])


@pytest.mark.parametrize("plan, n", [
    (parse_plan(seed_39b()), 55),
    (parse_plan(seed_proposed()), 56),
    (strategies.interleaved(3, 9, num_layers=12, copies=2), 12),
    (strategies.every(3, num_layers=10), 10),
], ids=["39b", "proposed", "interleaved", "every"])
def test_segment_percentages_sum_to_100(plan, n):
    lm = plan.layer_map(n)
    segs = render.segments(lm)
    assert sum(p for *_, p in segs) == pytest.approx(100.0)
    assert sum(b - a + 1 for _, a, b, _ in segs) == lm.num_layers
    # runs alternate: two neighbours never share a role
    assert all(x[0] != y[0] for x, y in zip(segs, segs[1:]))
    src = render.source_segments(lm)
    assert sum(p for *_, p in src) == pytest.approx(100.0)
    assert sum(b - a + 1 for _, a, b, _ in src) == n


def test_source_view_of_the_39b_reads_like_the_card(lm39):
    src = render.source_segments(lm39)
    assert [(c, a, b) for c, a, b, _ in src] == [(1, 0, 18), (3, 19, 40), (1, 41, 54)]
    assert [p for *_, p in src] == pytest.approx([100 * 19 / 55, 100 * 22 / 55, 100 * 14 / 55])
    assert round(src[0][3], 1) == 34.5  # the card's "34.5%" for layers 0-18


def test_source_view_shows_dropped_layers_as_x0():
    lm = parse_plan(seed_proposed()).layer_map(56)
    assert [(c, a, b) for c, a, b, _ in render.source_segments(lm)] == [
        (1, 0, 17), (0, 18, 40), (1, 41, 54), (0, 55, 55)]


def test_summary_of_the_39b(lm39):
    lines = render.summary(lm39).splitlines()
    assert lines[0] == "55 source layers -> 99 output layers (55 orig, 44 dup; 44.4% duplicated)"
    assert lines[1] == DIAGRAM_39B
    assert lines[2] == "output: [orig 0-40: 41.4%]  [dup 41-84: 44.4%]  [orig 85-98: 14.1%]"
    assert lines[3] == "source: [x1 0-18: 34.5%]  [x3 19-40: 40.0%]  [x1 41-54: 25.5%]"


def test_table_lists_every_output_layer(lm39):
    rows = render.table(lm39).splitlines()
    assert rows[0].split() == ["out", "source", "role", "slice", "scales", "!=", "1"]
    assert len(rows) == 1 + 99
    assert rows[1].split() == ["0", "0", "orig", "0", "-"]
    assert rows[42].split() == ["41", "19", "dup", "1", "o_proj=0,", "down_proj=0"]
    assert rows[99].split() == ["98", "54", "orig", "3", "-"]
    assert "non-layer" not in render.table(lm39)


def test_table_names_scaled_edge_tensors():
    lm = parse_plan("merge_method: passthrough\nslices:\n  - sources:\n      - model: m\n"
                    "        layer_range: [0, 2]\n        parameters: {scale: 0.5}\n").layer_map(2)
    assert render.table(lm).splitlines()[-1] == (
        "non-layer tensors scaled: embed_tokens=0.5, norm=0.5, lm_head=0.5")


def test_identity_map_renders_all_orig():
    lm = LayerMap.identity(4)
    assert render.diagram(lm) == "0000"
    assert render.segments(lm) == [("orig", 0, 3, 100.0)]
    assert render.source_segments(lm) == [(1, 0, 3, 100.0)]
