"""post_attention_layernorm moves in the duplicated layers.

Seed: "`post_attention_layernorm` interestingly had some changes in the upscale's duplicated
layers, unlike Cydonia where latter layers were completely unchanged."

Operationalisation: per training run (seed), fine-tune the upscale and take the relative change
rel = ‖ΔW‖/‖W₀‖ of post_attention_layernorm from the upscale as built to the end. Effect, with
the depth control of dups_more_responsive (`patterns.depth_controlled_log_ratio`): per duplicate,
log rel minus the originals' log-rel profile interpolated at its output depth, averaged per
duplicated source and then over sources. Claimed direction: > 0. Cases: the upscale strategy
(`contiguous-unmatched`: the earlier log(mean rel dup / mean rel orig), confounded by depth).
Placebo: the same metric on the normal fine-tune at the duplicates' relative depths.

Within-run form: one unit per duplicated source layer (its copies' residuals averaged);
`contiguous-unmatched`: per output layer the log of its rel, dup vs orig, copies of one source
layer averaged into one unit (`harness.claims.units`).

Refuted when the mean residual is shown below the sesoi: the norm moves no more in duplicates
than in originals at their depth, by any amount of interest.
"""

from __future__ import annotations

from harness.claims.lab import deltas
from harness.claims.measured import Measured, Within
from harness.claims.measures import measure
from harness.claims.measures._cases import check_case
from harness.claims.measures.responsiveness import DUP_SOURCE_RESIDUAL, PLACEBO, placebo_of
from harness.claims.patterns import (depth_controlled_log_ratio, depth_residual_units, layer_log_means,
                                     role_mean_log_ratio)
from harness.claims.units import SOURCE_LAYER_BY_ROLE, role_units

CASES = ("contiguous", "contiguous-unmatched", "interleaved")
MODULE = "post_attention_layernorm"
UNMATCHED = "-unmatched"


@measure("post_norm_moves_in_dups")
def post_norm_moves_in_dups(lab, seeds: list[int], case: str) -> Measured:
    check_case("post_norm_moves_in_dups", case, CASES)
    strategy = case.removesuffix(UNMATCHED)
    lm = lab.layer_map(strategy)
    runs = [lab.upscaled(seed, strategy) for seed in seeds]
    per_run = [deltas(run, lm) for run in runs]
    if case.endswith(UNMATCHED):
        effects = [role_mean_log_ratio(rows, lm, MODULE) for rows in per_run]
        within = Within(role_units(layer_log_means(per_run[0], [MODULE]), lm), unit=SOURCE_LAYER_BY_ROLE)
        placebo = None
    else:
        effects = [depth_controlled_log_ratio(rows, lm, [MODULE]) for rows in per_run]
        within = Within((depth_residual_units(per_run[0], lm, [MODULE]),), unit=DUP_SOURCE_RESIDUAL)
        placebo = placebo_of(lab, seeds, lm, [MODULE])

    def plots():
        from harness.heatmap import plot_deltas

        return {f"rel change, seed {seeds[0]} ({strategy})":
                plot_deltas(per_run[0], metric="rel", layer_map=lm)}

    return Measured(effects=effects, seeds=seeds, runs=[r.key for r in runs], within=within, plots=plots,
                    placebo=placebo, placebo_metric=PLACEBO if placebo is not None else "")
