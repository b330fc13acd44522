"""Within-run units: copies of one source layer count once (harness.claims.units)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from harness.claims.settings import plan_for
from harness.claims.measured import Within
from harness.claims.patterns import layer_log_means, within_slice_rhos
from harness.claims.units import by_source, dup_units, role_units, slice_units
from harness.layermap import LayerEntry, LayerMap
from harness.measure.deltas import DeltaRow


def two_copies() -> LayerMap:
    """orig 0, orig 1, two dups of source 1 (outputs 2, 3), orig 2 (output 4)."""
    return LayerMap(3, (LayerEntry(0, 0, "orig", 0, 0.0), LayerEntry(1, 1, "orig", 0, 0.0),
                        LayerEntry(2, 1, "dup", 1, 0.0), LayerEntry(3, 1, "dup", 2, 0.0),
                        LayerEntry(4, 2, "orig", 3, 0.0)))


def tiny(strategy: str) -> LayerMap:
    return plan_for(strategy, 8).layer_map(8, "mistral")


def test_two_copies_of_one_source_are_one_unit():
    lm = two_copies()
    values = {0: 1.0, 1: 2.0, 2: 10.0, 3: 20.0, 4: 3.0}
    assert by_source(values, lm, "dup") == {1: 15.0}
    dup, orig = role_units(values, lm)
    assert dup == (15.0,)  # not (10.0, 20.0): the copies are one observation
    assert orig == (1.0, 2.0, 3.0)  # an orig layer is the only orig copy of its source
    assert Within((dup, orig), unit="x").n == 4


@pytest.mark.parametrize("strategy, dup_n, orig_n", [("contiguous", 3, 8), ("interleaved", 3, 8),
                                                     ("single", 1, 8), ("block", 3, 8)])
def test_tiny_layouts_have_one_dup_unit_per_duplicated_source(strategy, dup_n, orig_n):
    lm = tiny(strategy)
    values = {e.index: float(e.index) for e in lm.layers}  # every copy a different value
    dup, orig = role_units(values, lm)
    assert (len(dup), len(orig)) == (dup_n, orig_n)
    assert len(dup_units(values, lm)) == dup_n
    assert len(lm.indices("dup")) >= dup_n  # contiguous/interleaved: 6 dup layers, 3 units


def test_more_identical_copies_do_not_change_the_units():
    """A third copy with its source's value adds no evidence; counted as a layer it would."""
    lm2 = plan_for("contiguous", 8).layer_map(8, "mistral")
    lm3 = LayerMap(lm2.source_layers, lm2.layers + tuple(
        LayerEntry(lm2.num_layers + k, src, "dup", 9, 0.0) for k, src in enumerate((3, 4, 5))))
    value = {0: 0.1, 1: 0.2, 2: 0.3, 3: 1.0, 4: 2.0, 5: 4.0, 6: 0.6, 7: 0.7}
    for lm in (lm2, lm3):
        dup, orig = role_units({e.index: value[e.source] * (2 if e.role == "dup" else 1)
                                for e in lm.layers}, lm)
        assert dup == (2.0, 4.0, 8.0) and len(orig) == 8


def rows_for(lm: LayerMap, rel) -> list[DeltaRow]:
    return [DeltaRow(layer=e.index, module=m, l2=1.0, rel=rel(e, m), mean_abs=1.0, cos=1.0)
            for e in lm.layers for m in ("q_proj", "up_proj")]


def test_layer_log_means_then_units():
    lm = tiny("contiguous")
    rows = rows_for(lm, lambda e, m: math.exp(e.index))  # each output layer its own value
    per_layer = layer_log_means(rows, ["q_proj", "up_proj"])
    assert per_layer == pytest.approx({e.index: float(e.index) for e in lm.layers})
    dup, _ = role_units(per_layer, lm)
    assert dup == pytest.approx(((6 + 9) / 2, (7 + 10) / 2, (8 + 11) / 2))


def test_slices_copying_the_same_sources_are_averaged_per_module():
    lm = tiny("contiguous")  # two dup slices, both copies of sources 3-5
    rows = rows_for(lm, lambda e, m: 1.0 + e.index * (1 if m == "q_proj" else -0.01)
                    * (1 if e.slice == 1 else -1))
    rhos = within_slice_rhos(rows, lm)
    assert set(rhos) == {((6, 7, 8), "q_proj"), ((6, 7, 8), "up_proj"),
                         ((9, 10, 11), "q_proj"), ((9, 10, 11), "up_proj")}
    units = slice_units(rhos, lm)
    assert len(units) == 2  # one per module, not per (slice, module)
    assert units == pytest.approx((0.0, 0.0))  # +1 in one slice, -1 in its copy


def test_a_layer_outside_the_map_is_an_error():
    with pytest.raises(ValueError, match="output layer 7 is not in the layer map"):
        by_source({7: 1.0}, two_copies())
    with pytest.raises(ValueError, match="at least one dup and one orig"):
        role_units({0: 1.0}, two_copies())


def test_a_flat_slice_segment_is_left_out_not_counted_as_zero():
    """A segment with no change differences has no rank correlation: it must not enter the mean as
    rho = 0 (which would pull every effect towards 0)."""
    from harness.claims.patterns import within_slice_rho

    lm = tiny("contiguous")
    rows = rows_for(lm, lambda e, m: 1.0 + (e.index if m == "q_proj" else 0.0))  # up_proj flat
    rhos = within_slice_rhos(rows, lm)
    assert all(np.isnan(v) for (_, m), v in rhos.items() if m == "up_proj")
    assert within_slice_rho(rows, lm) == pytest.approx(1.0)  # q_proj rises in both slices
    assert slice_units(rhos, lm) == pytest.approx((1.0,))
