"""Each duplicated slice has its own depth gradient.

Seed: "Training an upscaled model with two slices of duplicate layers does two things: Each slice
of duplicated layers has its own gradient. ..." (the top-down gradient of a plain fine-tune,
restarted inside each slice).

Operationalisation, per training run (seed) of the contiguous upscale (the seed's layout: two
slices of copies of the same layers). A duplicate's change from the upscale as built to the end:
rel = ‖ΔW‖/‖W₀‖ for the modules it keeps, fill = ‖W‖/‖W_src‖ for the zeroed o_proj/down_proj.

- `within`: per duplicate slice and module, Spearman(position in slice, change); effect: their
  mean. Claimed > 0. Refuted if the CI lies wholly below 0 (change falls inside slices).
- `break`: the change profile over the duplicate region (modules scaled to mean 1 there), and
  `break_at_boundaries` at the start of the second slice: mean |step| there − mean |step|
  elsewhere in the region. Claimed > 0 (the gradient restarts). Refuted if the CI lies wholly
  below 0. Only the dup-dup boundary counts: the orig->dup boundaries jump because duplicates
  change more overall (`dups_more_responsive`), not because a slice has its own gradient.
"""

from __future__ import annotations

import pytest

from harness.claims.patterns import dup_region_profile, plot_profiles, within_slice_rho, within_slice_rhos
from harness.claims.lab import deltas
from fixtures.params import scale_grid
from harness.heatmap import plot_deltas
from harness.stats import break_at_boundaries

STRATEGY = "contiguous"  # the only layout with duplicate slices longer than one layer
EXPECTED = {
    "within": ("refuted",
               "8 seeds at tiny: mean within-slice Spearman -0.288, 95% CI [-0.448, -0.122], "
               "p = 0.996, n = 8 (CI wholly below 0): inside the two 3-layer slices change falls "
               "slightly with depth; the duplicate region is flat to within a few percent."),
    "break": ("inconclusive",
              "8 seeds at tiny: mean |step| at the second slice's start − elsewhere +0.0005, "
              "95% CI [-0.018, +0.018], p = 0.47, n = 8: no restart of the profile at the "
              "slice boundary, but the CI also allows one. Slices are 3 layers at tiny (22 in "
              "the seed's 39B); a gradient inside them has little room."),
}


@pytest.mark.parametrize("scale, aspect", scale_grid(["within", "break"]))
def test_slice_own_gradient(scale, aspect, lab, seeds, claim):
    lm = lab.layer_map(STRATEGY)
    runs = [lab.upscaled(seed, STRATEGY) for seed in seeds]
    per_run = [deltas(run, lm) for run in runs]
    within = None  # the within-run form (a manifest's one run): only the `within` aspect has one
    if aspect == "within":
        effects = [within_slice_rho(rows, lm) for rows in per_run]
        within = (within_slice_rhos(per_run[0], lm),)  # units: (slice, module)
        method = ("mean over duplicate slices and modules of Spearman(position in slice, change); "
                  "change = rel (kept modules) or fill (zeroed ones); sign-flip test over seeds")
    else:
        effects = [break_at_boundaries(*dup_region_profile(rows, lm)).statistic
                   for rows in per_run]
        method = ("break_at_boundaries statistic of the duplicate region's change profile at "
                  "the second slice's start; sign-flip test over seeds")
    want, why = EXPECTED[aspect]
    profile, starts = dup_region_profile(per_run[0], lm)
    claim.check(
        id="slice_own_gradient",
        statement="Within each duplicated slice of a contiguous upscale, change rises with depth "
                  "and restarts at the next slice.",
        method=method, effects=effects, direction="greater", within=within,
        runs=[r.key for r in runs], seeds=seeds,
        expected={"tiny": want}, reason={"tiny": why},
        plots={f"rel change, seed {seeds[0]} ({STRATEGY})":
               plot_deltas(per_run[0], metric="rel", layer_map=lm),
               f"duplicate-region change profile, seed {seeds[0]}":
               plot_profiles({f"seed {seeds[0]}": profile}, boundaries=starts,
                             xlabel=f"duplicate layer (from layer {lm.indices('dup')[0]})",
                             title="change over the duplicates (rel or fill, modules scaled)")},
    )
