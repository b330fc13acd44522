"""The registered controls' maths on hand-made inputs (issue 12): matched target loss, the
exchange rate of a reset against control pairs, depth-matched responsiveness, the normal-layer
control of saturation, and reconnection's rule for a run whose duplicates never carry function."""

from __future__ import annotations

import math

import pytest

from harness.claims.function import (Curve, exchange_rate, matched_rises, pair_contrast,
                                     read_at_level)
from harness.claims.measures.merge_back import first_pair_contrast
from harness.claims.measures.reconnect import reconnection_time
from harness.claims.patterns import (depth_controlled_log_ratio, depth_matched_log_ratio,
                                     depth_matched_log_ratios, dup_orig_log_ratio, placebo_dups,
                                     placebo_log_ratio)
from harness.claims.settings import plan_for
from harness.claims.time import mean_rel
from harness.claims.units import source_pairs
from harness.layermap import LayerEntry, LayerMap
from harness.measure.deltas import DeltaRow

STEPS = (0.0, 10.0, 20.0, 30.0)
# arm a learns the target further (ends at 0.5) and forgets more; arm b ends at 1.5
A = Curve(STEPS, target=(3.0, 2.0, 1.0, 0.5), original=(1.0, 1.2, 1.6, 2.0))
B = Curve(STEPS, target=(3.0, 2.5, 2.0, 1.5), original=(0.9, 1.0, 1.1, 1.2))  # rises from its own start


# -- matched target loss ------------------------------------------------------------------------


def test_the_arm_that_learns_further_is_read_where_it_reaches_the_others_final_loss():
    m = matched_rises(A, B)
    # a's target crosses 1.5 halfway between steps 10 (2.0) and 20 (1.0): original 1.4 there
    assert (m.step_a, m.step_b, m.matched) == (pytest.approx(15.0), 30.0, True)
    assert m.rise_a == pytest.approx(0.4) and m.rise_b == pytest.approx(0.3)
    assert m.gap == pytest.approx(0.1)  # at the end of the same steps it would be 1.0 − 0.3 = 0.7


def test_matching_is_symmetric_in_which_arm_learns_further():
    m = matched_rises(B, A)
    assert (m.step_a, m.step_b) == (30.0, pytest.approx(15.0))
    assert m.gap == pytest.approx(-0.1)


def test_the_first_crossing_counts_and_identical_arms_are_read_at_their_ends():
    c = Curve(STEPS, target=(3.0, 2.0, 1.0, 1.5), original=(1.0, 1.5, 2.0, 1.8))
    d = Curve(STEPS, target=(3.0, 2.5, 2.0, 1.5), original=(1.0, 1.1, 1.2, 1.3))
    # c first reaches 1.5 between steps 10 and 20 (not at its end, where it is back at 1.5)
    m = matched_rises(c, d)
    assert m.step_a == pytest.approx(15.0) and m.rise_a == pytest.approx(0.75)
    same = matched_rises(d, d)
    assert (same.step_a, same.step_b, same.gap) == (30.0, 30.0, 0.0)


def test_a_level_above_the_start_is_reached_at_step_0():
    worse = Curve(STEPS, target=(3.0, 3.2, 3.4, 3.5), original=(1.0, 1.0, 1.0, 1.0))  # target rose
    m = matched_rises(A, worse)
    assert m.step_a == 0.0 and m.rise_a == 0.0 and m.matched


def test_an_arm_that_never_reaches_the_level_is_read_at_its_end_and_says_so():
    assert read_at_level(B, 1.0) is None  # b never gets down to 1.0
    assert read_at_level(B, 2.0) == (20.0, 1.1)  # exactly at a snapshot
    diverged = Curve(STEPS, target=(3.0, 2.0, 1.0, math.nan), original=(1.0, 1.2, 1.6, 2.0))
    m = matched_rises(A, diverged)  # no target loss of a reaches a NaN level
    assert (m.step_a, m.step_b, m.matched) == (30.0, 30.0, False)
    assert m.rise_a == pytest.approx(1.0) and m.rise_b == pytest.approx(1.0)


def test_a_malformed_curve_is_one_clear_error():
    with pytest.raises(ValueError, match="one target and one original loss"):
        Curve(STEPS, target=(1.0, 2.0), original=(1.0, 2.0, 3.0, 4.0))
    with pytest.raises(ValueError, match="increasing"):
        Curve((0.0, 20.0, 10.0), target=(1.0, 2.0, 3.0), original=(1.0, 2.0, 3.0))


# -- exchange rate of a reset -------------------------------------------------------------------


def test_exchange_rate_is_undefined_without_a_target_cost():
    assert exchange_rate(-0.2, 0.5) == pytest.approx(-0.4)
    assert exchange_rate(-0.2, 0.001) == pytest.approx(-200.0)  # no floor (issue 21)
    assert exchange_rate(-0.2, 0.0) is None and exchange_rate(-0.2, -0.3) is None


def test_a_pair_contrast_leaves_undefined_rates_out():
    assert pair_contrast({(0, 1): -1.0, (2, 3): None, (3, 4): 0.5, (4, 5): 1.5}) == pytest.approx(-2.0)
    assert pair_contrast({(0, 1): None, (2, 3): 0.5}) is None
    assert pair_contrast({(0, 1): -1.0, (2, 3): None}) is None


def test_first_pair_against_the_median_of_pairs_from_layer_2():
    changes = {(0, 1): (-0.3, 0.1),  # e = -3
               (1, 2): (-100.0, 0.1),  # shares layer 1: not a control
               (2, 3): (-0.1, 0.1), (3, 4): (-0.2, 0.1), (4, 5): (-0.05, 0.001)}  # e = -1, -2, -5
    assert first_pair_contrast(changes) == pytest.approx(-3.0 - (-2.0))
    assert pair_contrast({(0, 1): 1.0, (2, 3): 0.0, (3, 4): 4.0}) == pytest.approx(-1.0)
    with pytest.raises(ValueError, match="at least one control pair"):
        pair_contrast({(0, 1): 1.0})


# -- depth-matched responsiveness ---------------------------------------------------------------


def two_copies() -> LayerMap:
    """orig 0, orig 1, two dups of source 1 (outputs 2, 3), orig 2 (output 4)."""
    return LayerMap(3, (LayerEntry(0, 0, "orig", 0, 0.0), LayerEntry(1, 1, "orig", 0, 0.0),
                        LayerEntry(2, 1, "dup", 1, 0.0), LayerEntry(3, 1, "dup", 2, 0.0),
                        LayerEntry(4, 2, "orig", 3, 0.0)))


def rows_for(lm: LayerMap, rel) -> list[DeltaRow]:
    rows = [DeltaRow(layer=e.index, module=m, l2=1.0, rel=rel(e, m), mean_abs=1.0, cos=1.0)
            for e in lm.layers for m in ("q_proj", "up_proj")]
    # o_proj: no rel in a duplicate (zeroed), a large one in the originals; it must not enter
    return rows + [DeltaRow(layer=e.index, module="o_proj", l2=1.0, rel=None if e.role == "dup" else 50.0,
                            mean_abs=1.0, cos=1.0) for e in lm.layers]


def test_each_duplicate_is_compared_with_its_own_source():
    lm = two_copies()
    rel = {0: 0.1, 1: 0.2, 2: 0.4, 3: 0.8, 4: 0.3}
    rows = rows_for(lm, lambda e, m: rel[e.index] * (1.0 if m == "q_proj" else 3.0))
    # source 1: dup copies' mean (0.4·2 + 0.8·2)/2 = 1.2 against its orig copy's 0.2·2 = 0.4
    assert depth_matched_log_ratios(rows, lm) == pytest.approx({1: math.log(3.0)})
    assert depth_matched_log_ratio(rows, lm) == pytest.approx(math.log(3.0))
    # the unmatched contrast compares with the mean of every orig layer instead
    assert dup_orig_log_ratio(rows, lm) == pytest.approx(math.log(1.2 / 0.4))  # (0.2+0.4+0.6)/3 = 0.4


def test_change_rising_with_depth_alone_is_no_depth_matched_effect():
    """A duplicate that changes exactly as its own source, in a model where change rises with
    depth: the unmatched contrast (dups sit deep) is positive, the matched one is 0."""
    lm = plan_for("contiguous", 8).layer_map(8, "mistral")
    rows = rows_for(lm, lambda e, m: 1.0 + e.source)  # change rises with source depth
    assert dup_orig_log_ratio(rows, lm) > 0.1
    ratios = depth_matched_log_ratios(rows, lm)
    assert list(ratios) == sorted({lm.source_of(i) for i in lm.indices("dup")})
    assert all(r == pytest.approx(0.0) for r in ratios.values())


def test_change_rising_with_output_depth_is_no_depth_controlled_effect_but_fools_the_source_match():
    """Issue 21: change that rises with *output* depth alone. The source-matched control compares
    each copy with its source's original, which sits shallower, so it still finds an effect; the
    depth-controlled metric (originals' profile at the copy's own depth) finds none."""
    lm = plan_for("contiguous", 16).layer_map(16, "mistral")
    rows = rows_for(lm, lambda e, m: math.exp(0.05 * e.index))  # log change linear in output depth
    assert depth_matched_log_ratio(rows, lm) > 0.2  # the old control rewards depth
    assert depth_controlled_log_ratio(rows, lm) == pytest.approx(0.0, abs=1e-12)
    up = rows_for(lm, lambda e, m: math.exp(0.05 * e.index) * (1.5 if e.role == "dup" else 1.0))
    assert depth_controlled_log_ratio(up, lm) == pytest.approx(math.log(1.5))


def test_the_placebo_reads_the_normal_model_at_the_duplicates_relative_depths():
    lm = plan_for("contiguous", 16).layer_map(16, "mistral")  # 28 layers, dups at 12-23
    assert placebo_dups(lm, 16) == [7, 8, 9, 10, 11, 12, 13]
    normal = LayerMap.identity(16)
    flat = rows_for(normal, lambda e, m: math.exp(0.05 * e.index))  # depth alone: no placebo effect
    assert placebo_log_ratio(flat, lm, 16) == pytest.approx(0.0, abs=1e-12)
    bump = rows_for(normal, lambda e, m: 2.0 if 7 <= e.index <= 13 else 1.0)
    assert placebo_log_ratio(bump, lm, 16) == pytest.approx(math.log(2.0))


def test_a_supported_placebo_fails_the_claim_and_a_null_one_does_not():
    """The control check of the plugin: a placebo that the claim's own rule would support fails
    the test whatever the claim's verdict (fails when the check or the placebo is dropped)."""
    from fixtures.claim import placebo_result
    from harness.claims.measured import Measured
    from harness.claims.registry import load

    case = load().entry("dups_more_responsive").primary
    seeds = list(range(12))
    depth_driven = Measured(effects=[0.3] * 12, seeds=seeds, placebo=[0.25 + 0.01 * s for s in seeds],
                            placebo_metric="m")
    failed = placebo_result(case, depth_driven, alpha=0.05, single_run=False)
    assert failed["control_failed"] and failed["decision"]["verdict"] == "supported"
    null = Measured(effects=[0.3] * 12, seeds=seeds, placebo=[(-1) ** s * 0.01 for s in seeds],
                    placebo_metric="m")
    assert not placebo_result(case, null, alpha=0.05, single_run=False)["control_failed"]
    assert placebo_result(case, Measured(effects=[0.3] * 12, seeds=seeds), alpha=0.05,
                          single_run=False) is None


def test_a_duplicated_source_without_an_orig_copy_is_an_error():
    lm = LayerMap(2, (LayerEntry(0, 0, "orig", 0, 0.0), LayerEntry(1, 1, "dup", 1, 0.0)))
    with pytest.raises(ValueError, match=r"duplicated source layers \[1\] have no orig copy"):
        source_pairs({0: 1.0, 1: 2.0}, lm)


# -- saturation's control, reconnection's rule ------------------------------------------------


def test_mean_rel_reads_every_layers_zeroed_modules_only():
    rows = [DeltaRow(layer=k, module=m, l2=1.0, rel=v, mean_abs=1.0, cos=1.0)
            for k in range(2) for m, v in (("o_proj", 0.1 * (k + 1)), ("down_proj", 0.3), ("q_proj", 9.0))]
    assert mean_rel(rows) == pytest.approx((0.1 + 0.2 + 0.3 + 0.3) / 4)


def test_a_run_whose_duplicates_never_carry_function_reconnects_at_its_last_step():
    steps = (0, 1, 2, 4, 8)
    assert reconnection_time(steps, [0.0, 0.4, 0.2, 0.1, -0.01], seed=0) == 8.0
    assert reconnection_time(steps, [0.0, 0.4, 0.2, 0.1, 0.0], seed=0) == 8.0
    assert reconnection_time(steps, [0.0, 0.1, 0.3, 0.4, 0.4], seed=0) == pytest.approx(1.5)


def test_the_epoch_rate_placebo_plays_the_duplicates_at_their_relative_depths():
    from harness.claims.measures.epoch_rate import pseudo_map

    lm = plan_for("contiguous", 16).layer_map(16, "mistral")
    fake = pseudo_map(lm, 16)
    assert fake.num_layers == 16 and fake.indices("dup") == placebo_dups(lm, 16)
    assert all(e.source == e.index for e in fake.layers)
