"""Duplicates change more than originals.

Seed: "The duplicated layers seem to be playing catch up with the original layers ... they are
more responsive to training than the original layers" (Sample B of the model card).

Operationalisation: per training run (seed), fine-tune the upscale on the target domain and take
the relative weight change rel = ‖ΔW‖/‖W₀‖ from the upscale as built (step 0) to the end, over
the modules a duplicate keeps at full scale (q, k, v, gate, up and both norms; o_proj/down_proj
start at 0 where rel is undefined). Change rises with depth in any fine-tune, and duplicates sit
deeper than most originals, so each duplicate is compared with what an original does at the
duplicate's own output depth: log mean-rel of the duplicate minus the originals' log mean-rel
profile interpolated at its relative depth, averaged over its source's copies and then over the
duplicated sources (`patterns.depth_controlled_log_ratio`). Claimed direction: > 0. Cases: the
upscale strategy (contiguous is the seed's layout; interleaved, single and block likewise);
`contiguous-all-layers` is the unmatched contrast a heatmap shows, confounded by depth;
`contiguous-source-matched` the earlier control (each copy against its own source's original,
which sits shallower by the slice's length, so it still rewards depth).

Placebo (the control checked): the same metric on the normal fine-tune of the same seed, its
layers at the duplicates' relative depths treated as duplicates. A control that removes depth
gives no effect there; a "supported" placebo fails the test.

Within-run form (one run trained elsewhere): one unit per duplicated source layer (its copies'
residuals averaged): one sample. For `contiguous-all-layers`: per output layer, the log of its
mean rel, dup vs orig, copies of one source averaged into one unit (`harness.claims.units`).

Refuted when the mean residual is shown below the sesoi (the upper bound at the Holm level):
duplicates change no more than an original at their depth, by any amount of interest.
"""

from __future__ import annotations

from harness.claims.lab import deltas
from harness.claims.measured import Measured, Within
from harness.claims.measures import measure
from harness.claims.measures._cases import check_case
from harness.claims.patterns import (FULL_SCALE, depth_controlled_log_ratio, depth_matched_log_ratio,
                                     depth_residual_units, dup_orig_log_ratio, layer_log_means,
                                     placebo_log_ratio)
from harness.claims.units import SOURCE_LAYER_BY_ROLE, role_units

CASES = ("contiguous", "contiguous-all-layers", "contiguous-source-matched", "interleaved", "single", "block")
UNMATCHED, SOURCE_MATCHED = "-all-layers", "-source-matched"
DUP_SOURCE_RESIDUAL = ("duplicated source layer (its copies' log change minus the originals' profile "
                       "at their depth, averaged)")
PLACEBO = ("the same metric on the normal fine-tune of the same seed, its layers at the duplicates' "
           "relative depths treated as duplicates")


def placebo_of(lab, seeds, lm, modules=FULL_SCALE, **overrides) -> tuple[float, ...] | None:
    """The placebo arm of a depth-controlled duplicates-vs-originals metric, or None where the
    scale has no normal fine-tune (a manifest)."""
    from harness.claims import NotApplicable

    try:
        normal = [lab.normal(seed, **overrides) for seed in seeds]
    except NotApplicable:
        return None
    depth = lab.setting.depth
    return tuple(placebo_log_ratio(deltas(run, None), lm, depth, modules) for run in normal)


@measure("dups_more_responsive")
def dups_more_responsive(lab, seeds: list[int], case: str) -> Measured:
    check_case("dups_more_responsive", case, CASES)
    strategy = case.removesuffix(UNMATCHED).removesuffix(SOURCE_MATCHED)
    lm = lab.layer_map(strategy)
    runs = [lab.upscaled(seed, strategy) for seed in seeds]
    per_run = [deltas(run, lm) for run in runs]
    placebo = None
    if case.endswith(UNMATCHED):
        effects = [dup_orig_log_ratio(rows, lm) for rows in per_run]
        within = Within(role_units(layer_log_means(per_run[0], FULL_SCALE), lm), unit=SOURCE_LAYER_BY_ROLE)
    elif case.endswith(SOURCE_MATCHED):
        effects = [depth_matched_log_ratio(rows, lm) for rows in per_run]
        within = None
    else:
        effects = [depth_controlled_log_ratio(rows, lm) for rows in per_run]
        within = Within((depth_residual_units(per_run[0], lm),), unit=DUP_SOURCE_RESIDUAL)
        placebo = placebo_of(lab, seeds, lm)

    def plots():
        from harness.heatmap import plot_deltas

        return {f"rel change, seed {seeds[0]} ({strategy})":
                plot_deltas(per_run[0], metric="rel", layer_map=lm)}

    return Measured(effects=effects, seeds=seeds, runs=[r.key for r in runs], within=within, plots=plots,
                    placebo=placebo, placebo_metric=PLACEBO if placebo is not None else "")
