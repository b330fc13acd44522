"""The fill meter (harness.claims.fill) and `uplab fill`: known curves in, their ceilings out."""

from __future__ import annotations

import math

import numpy as np
import pytest

from harness.claims import fill
from harness.claims.settings import plan_for
from harness.measure.rows import DeltaRow

LM = plan_for("contiguous", 8).layer_map(8, "llama")  # dups 6-8 and 9-11, copies of 3-5


def rows_at(curve):
    """deltas_at(step) for an upscale whose dup o_proj/down_proj fill is curve(step, slice)."""
    slices = [[6, 7, 8], [9, 10, 11]]

    def at(step):
        out = []
        for k, layers in enumerate(slices):
            for layer in layers:
                for module in fill.ZEROED:
                    f = curve(step, k)
                    out.append(DeltaRow(layer, module, l2=f, rel=None, mean_abs=f, cos=None, fill=f))
        out += [DeltaRow(i, "o_proj", l2=0.1, rel=0.1, mean_abs=0.1, cos=0.0) for i in range(6)]
        return out

    return at


def test_a_saturating_fill_gives_its_ceiling_within_the_interval():
    steps = [2, 4, 6, 8, 12, 16]
    ceilings = (0.6, 0.9)
    rng = np.random.default_rng(3)
    noise = {s: rng.normal(0, 0.004, 2) for s in steps}
    meter = fill.fill_meter(rows_at(lambda s, k: ceilings[k] * (1 - math.exp(-s / 4)) + noise[s][k]), steps, LM)
    assert len(meter) == 2 * 2 and {m.module for m in meter} == {"o_proj", "down_proj"}
    for m in meter:
        want = ceilings[0 if m.layers[0] == 6 else 1]
        assert m.steps == (0, *steps) and m.fill[0] == 0.0
        assert m.ceiling_low <= want <= m.ceiling_high and abs(m.ceiling - want) < 0.03, m
        assert m.rates[-1] < m.rates[0]  # slowing
    assert fill.table(meter)[0][0] == "layers 6-8 (copies of 3-5)"


def test_a_straight_fill_has_no_ceiling_and_two_snapshots_cannot_fit_one():
    straight = fill.fill_meter(rows_at(lambda s, k: 0.02 * s), [4, 8, 12, 16], LM)
    assert all(m.straight and m.ceiling is None for m in straight)
    assert fill.table(straight)[0][4] == "none (a straight line fits as well)"
    short = fill.fill_meter(rows_at(lambda s, k: 0.02 * s), [4, 8], LM)
    assert all(m.ceiling is None and not m.straight for m in short)
    assert fill.table(short)[0][4] == "needs 3 snapshots"
    assert fill.table(short)[0][2:4] == ["0.000 → 0.080 → 0.160", "2.00e-02 → 2.00e-02"]


def test_an_upscale_without_duplicated_slices_is_refused():
    with pytest.raises(ValueError, match="no slice of duplicates"):
        fill.fill_meter(rows_at(lambda s, k: 0.1), [4], plan_for("contiguous", 8).layer_map(8, "llama").identity(8))
