"""Duplicates change more than originals.

Seed: "The duplicated layers seem to be playing catch up with the original layers ... they are
more responsive to training than the original layers" (Sample B of the model card).

Operationalisation: per training run (seed), fine-tune the upscale on the target domain and take
the relative weight change rel = ‖ΔW‖/‖W₀‖ from the upscale as built (step 0) to the end, over
the modules a duplicate keeps at full scale (q, k, v, gate, up and both norms; o_proj/down_proj
start at 0 where rel is undefined). Change rises with depth in any fine-tune, and duplicates sit
deeper than most originals, so the effect is depth-matched: per duplicated source layer s,
log(mean rel of s's dup copies / rel of s's own orig copy), averaged over the duplicated source
layers. Claimed direction: > 0. Cases: the upscale strategy (contiguous is the seed's layout;
interleaved, single and block depth-matched likewise); `contiguous-all-layers` is the unmatched
contrast a heatmap shows, log(mean rel over all dup layers / over all orig layers), confounded
by depth.

Within-run form (one run trained elsewhere): for the depth-matched cases, one paired unit per
duplicated source layer (its copies averaged, against its own orig copy): one sample of
per-source log ratios. For `contiguous-all-layers`: per output layer, the log of its mean rel,
dup vs orig, with the copies of one source layer averaged into one unit (`harness.claims.units`).

Refuted if the CI of the mean log-ratio lies wholly below 0: a duplicate changes less than the
original layer it copies.
"""

from __future__ import annotations

from harness.claims.lab import deltas
from harness.claims.measured import Measured, Within
from harness.claims.measures import measure
from harness.claims.measures._cases import check_case
from harness.claims.patterns import (FULL_SCALE, depth_matched_log_ratio, depth_matched_log_ratios,
                                     dup_orig_log_ratio, layer_log_means)
from harness.claims.units import DUP_SOURCE_PAIRED, SOURCE_LAYER_BY_ROLE, role_units

CASES = ("contiguous", "contiguous-all-layers", "interleaved", "single", "block")
UNMATCHED = "-all-layers"


@measure("dups_more_responsive")
def dups_more_responsive(lab, seeds: list[int], case: str) -> Measured:
    check_case("dups_more_responsive", case, CASES)
    matched = not case.endswith(UNMATCHED)
    strategy = case.removesuffix(UNMATCHED)
    lm = lab.layer_map(strategy)
    runs = [lab.upscaled(seed, strategy) for seed in seeds]
    per_run = [deltas(run, lm) for run in runs]
    if matched:
        effects = [depth_matched_log_ratio(rows, lm) for rows in per_run]
        within = Within((tuple(depth_matched_log_ratios(per_run[0], lm).values()),), unit=DUP_SOURCE_PAIRED)
    else:
        effects = [dup_orig_log_ratio(rows, lm) for rows in per_run]
        within = Within(role_units(layer_log_means(per_run[0], FULL_SCALE), lm), unit=SOURCE_LAYER_BY_ROLE)

    def plots():
        from harness.heatmap import plot_deltas

        return {f"rel change, seed {seeds[0]} ({strategy})":
                plot_deltas(per_run[0], metric="rel", layer_map=lm)}

    return Measured(effects=effects, seeds=seeds, runs=[r.key for r in runs], within=within, plots=plots)
