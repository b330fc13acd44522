"""post_attention_layernorm moves in the duplicated layers.

Seed: "`post_attention_layernorm` interestingly had some changes in the upscale's duplicated
layers, unlike Cydonia where latter layers were completely unchanged."

Operationalisation: per training run (seed), fine-tune the upscale and take the relative change
rel = ‖ΔW‖/‖W₀‖ of post_attention_layernorm from the upscale as built to the end. Effect:
log(mean rel over duplicate layers / mean rel over original layers) in the same run. Claimed
direction: > 0.

Refuted if the CI lies wholly below 0: the norm moves less in duplicates than in originals.
"""

from __future__ import annotations

import pytest

from harness.claims.patterns import layer_log_means, role_mean_log_ratio
from harness.claims.lab import deltas
from fixtures.params import strategy_params
from harness.heatmap import plot_deltas

MODULE = "post_attention_layernorm"


@pytest.mark.parametrize("scale, strategy", strategy_params(["contiguous", "interleaved"]))
def test_post_norm_moves_in_dups(scale, strategy, lab, seeds, claim):
    lm = lab.layer_map(strategy)
    runs = [lab.upscaled(seed, strategy) for seed in seeds]
    per_run = [deltas(run, lm) for run in runs]
    effects = [role_mean_log_ratio(rows, lm, MODULE) for rows in per_run]
    claim.check(
        id="post_norm_moves_in_dups",
        statement="post_attention_layernorm changes more in the duplicated layers than in the "
                  "original ones.",
        method="log(mean rel change of post_attention_layernorm, dup / orig layers), step 0 -> "
               "end; sign-flip test over seeds",
        effects=effects, direction="greater", runs=[r.key for r in runs], seeds=seeds,
        within=layer_log_means(per_run[0], lm, [MODULE]),
        plots={f"rel change, seed {seeds[0]} ({strategy})":
               plot_deltas(per_run[0], metric="rel", layer_map=lm)},
    )
