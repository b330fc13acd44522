"""Duplicates change more than originals.

Seed: "The duplicated layers seem to be playing catch up with the original layers ... they are
more responsive to training than the original layers" (Sample B of the model card).

Operationalisation: per training run (seed), fine-tune the upscale on the target domain and take
the relative weight change rel = ‖ΔW‖/‖W₀‖ from the upscale as built (step 0) to the end, over
the modules a duplicate keeps at full scale (q, k, v, gate, up and both norms; o_proj/down_proj
start at 0 where rel is undefined). Effect: log(mean rel over dup layers / mean rel over orig
layers). Claimed direction: > 0. Cases: the upscale strategy (contiguous is the seed's layout).

Within-run form (one run trained elsewhere): per output layer, the log of its mean rel over the
same modules; dup vs orig, with the copies of one source layer averaged into one unit
(`harness.claims.units`).

Refuted if the CI of the mean log-ratio lies wholly below 0: originals change more.
"""

from __future__ import annotations

from harness.claims.lab import deltas
from harness.claims.measured import Measured, Within
from harness.claims.measures import measure
from harness.claims.measures._cases import check_case
from harness.claims.patterns import FULL_SCALE, dup_orig_log_ratio, layer_log_means
from harness.claims.units import SOURCE_LAYER_BY_ROLE, role_units

CASES = ("contiguous", "interleaved", "single", "block")


@measure("dups_more_responsive")
def dups_more_responsive(lab, seeds: list[int], case: str) -> Measured:
    strategy = check_case("dups_more_responsive", case, CASES)
    lm = lab.layer_map(strategy)
    runs = [lab.upscaled(seed, strategy) for seed in seeds]
    per_run = [deltas(run, lm) for run in runs]
    effects = [dup_orig_log_ratio(rows, lm) for rows in per_run]

    def plots():
        from harness.heatmap import plot_deltas

        return {f"rel change, seed {seeds[0]} ({strategy})":
                plot_deltas(per_run[0], metric="rel", layer_map=lm)}

    return Measured(effects=effects, seeds=seeds, runs=[r.key for r in runs],
                    within=Within(role_units(layer_log_means(per_run[0], FULL_SCALE), lm),
                                  unit=SOURCE_LAYER_BY_ROLE),
                    plots=plots)
