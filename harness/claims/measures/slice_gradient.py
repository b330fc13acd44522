"""Each duplicated slice has its own depth gradient.

Seed: "Training an upscaled model with two slices of duplicate layers does two things: Each slice
of duplicated layers has its own gradient. ..." (the top-down gradient of a plain fine-tune,
restarted inside each slice).

Operationalisation, per training run (seed) of the contiguous upscale (the seed's layout: two
slices of copies of the same layers; the only layout with duplicate slices longer than one
layer). A duplicate's change from the upscale as built to the end: rel = ‖ΔW‖/‖W₀‖ for the
modules it keeps, fill = ‖W‖/‖W_src‖ for the zeroed o_proj/down_proj.

- `within`: per duplicate slice and module, Spearman(position in slice, change); effect: their
  mean. Claimed > 0. Refuted when the refutation test (Holm-adjusted) shows the effect below
  the sesoi: no effect of interest, or the opposite direction (change falls inside slices).
- `break`: the change profile over the duplicate region (modules scaled to mean 1 there), and
  `break_at_boundaries` at the start of the second slice: mean |step| there − mean |step|
  elsewhere in the region. Claimed > 0 (the gradient restarts). Refuted when the refutation
  test shows the effect below the sesoi. Only the dup-dup boundary counts: the orig->dup boundaries jump because duplicates
  change more overall (`dups_more_responsive`), not because a slice has its own gradient.

Within-run form (`within` only): the per-(slice, module) Spearman values of the one run. The two
slices of the seed's layout copy the same source layers, so they start identical and are not
independent: their values are averaged per module (`harness.claims.units.slice_units`), and a unit
is (the slices' source layers, module). Modules of one layer are trained together, so even these
units are not fully independent; read a within-run p-value as optimistic.

Caveat: slices are 3 layers on an 8-layer base (22 in the seed's 39B); a gradient inside them has little room.
"""

from __future__ import annotations

from harness.claims.lab import deltas
from harness.claims.measured import Measured, Within
from harness.claims.measures import measure
from harness.claims.measures._cases import check_case
from harness.claims.patterns import dup_region_profile, plot_profiles, within_slice_rho, within_slice_rhos
from harness.claims.units import slice_units
from harness.stats import break_at_boundaries

CASES = ("within", "break")
STRATEGY = "contiguous"  # the only layout with duplicate slices longer than one layer
SLICE_UNIT = "module per duplicated source range (slices that copy the same layers averaged)"


@measure("slice_own_gradient")
def slice_own_gradient(lab, seeds: list[int], case: str) -> Measured:
    check_case("slice_own_gradient", case, CASES)
    lm = lab.layer_map(STRATEGY)
    runs = [lab.upscaled(seed, STRATEGY) for seed in seeds]
    per_run = [deltas(run, lm) for run in runs]
    within = None  # only the `within` case has a within-run form
    if case == "within":
        effects = [within_slice_rho(rows, lm) for rows in per_run]
        within = Within((slice_units(within_slice_rhos(per_run[0], lm), lm),), unit=SLICE_UNIT)
    else:
        effects = [break_at_boundaries(*dup_region_profile(rows, lm)).statistic for rows in per_run]

    def plots():
        from harness.heatmap import plot_deltas

        profile, starts = dup_region_profile(per_run[0], lm)
        return {f"rel change, seed {seeds[0]} ({STRATEGY})":
                plot_deltas(per_run[0], metric="rel", layer_map=lm),
                f"duplicate-region change profile, seed {seeds[0]}":
                plot_profiles({f"seed {seeds[0]}": profile}, boundaries=starts,
                              xlabel=f"duplicate layer (from layer {lm.indices('dup')[0]})",
                              title="change over the duplicates (rel or fill, modules scaled)")}

    return Measured(effects=effects, seeds=seeds, runs=[r.key for r in runs], within=within, plots=plots)
