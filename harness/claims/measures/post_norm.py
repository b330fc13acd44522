"""post_attention_layernorm moves in the duplicated layers.

Seed: "`post_attention_layernorm` interestingly had some changes in the upscale's duplicated
layers, unlike Cydonia where latter layers were completely unchanged."

Operationalisation: per training run (seed), fine-tune the upscale and take the relative change
rel = ‖ΔW‖/‖W₀‖ of post_attention_layernorm from the upscale as built to the end. Effect:
log(mean rel over duplicate layers / mean rel over original layers) in the same run. Claimed
direction: > 0. Cases: the upscale strategy.

Within-run form: per output layer the log of its rel, dup vs orig, copies of one source layer
averaged into one unit (`harness.claims.units`).

Refuted if the CI lies wholly below 0: the norm moves less in duplicates than in originals.
"""

from __future__ import annotations

from harness.claims.lab import deltas
from harness.claims.measured import Measured, Within
from harness.claims.measures import measure
from harness.claims.measures._cases import check_case
from harness.claims.patterns import layer_log_means, role_mean_log_ratio
from harness.claims.units import SOURCE_LAYER_BY_ROLE, role_units

CASES = ("contiguous", "interleaved")
MODULE = "post_attention_layernorm"


@measure("post_norm_moves_in_dups")
def post_norm_moves_in_dups(lab, seeds: list[int], case: str) -> Measured:
    strategy = check_case("post_norm_moves_in_dups", case, CASES)
    lm = lab.layer_map(strategy)
    runs = [lab.upscaled(seed, strategy) for seed in seeds]
    per_run = [deltas(run, lm) for run in runs]
    effects = [role_mean_log_ratio(rows, lm, MODULE) for rows in per_run]

    def plots():
        from harness.heatmap import plot_deltas

        return {f"rel change, seed {seeds[0]} ({strategy})":
                plot_deltas(per_run[0], metric="rel", layer_map=lm)}

    return Measured(effects=effects, seeds=seeds, runs=[r.key for r in runs],
                    within=Within(role_units(layer_log_means(per_run[0], [MODULE]), lm),
                                  unit=SOURCE_LAYER_BY_ROLE),
                    plots=plots)
