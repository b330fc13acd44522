"""Duplicates change more than originals.

Seed: "The duplicated layers seem to be playing catch up with the original layers ... they are
more responsive to training than the original layers" (Sample B of the model card).

Operationalisation: per training run (seed), fine-tune the upscale on the target domain and take
the relative weight change rel = ‖ΔW‖/‖W₀‖ from the upscale as built (step 0) to the end, over
the modules a duplicate keeps at full scale (q, k, v, gate, up and both norms; o_proj/down_proj
start at 0 where rel is undefined). Effect: log(mean rel over dup layers / mean rel over orig
layers). Claimed direction: > 0.

Refuted if the CI of the mean log-ratio lies wholly below 0: originals change more.
"""

from __future__ import annotations

import pytest

from harness.claims.patterns import FULL_SCALE, dup_orig_log_ratio, layer_log_means
from harness.claims.lab import deltas
from fixtures.params import strategy_params
from harness.heatmap import plot_deltas


@pytest.mark.parametrize("scale, strategy", strategy_params(["contiguous", "interleaved", "single", "block"]))
def test_dups_more_responsive(scale, strategy, lab, seeds, claim):
    lm = lab.layer_map(strategy)
    runs = [lab.upscaled(seed, strategy) for seed in seeds]
    per_run = [deltas(run, lm) for run in runs]
    effects = [dup_orig_log_ratio(rows, lm) for rows in per_run]
    claim.check(
        id="dups_more_responsive",
        statement="Duplicated layers change more in fine-tuning than original layers.",
        method="log(mean rel change of dup / orig layers), full-scale modules, step 0 -> end; "
               "sign-flip test over seeds",
        effects=effects, direction="greater", runs=[r.key for r in runs], seeds=seeds,
        within=layer_log_means(per_run[0], lm, FULL_SCALE),
        plots={f"rel change, seed {seeds[0]} ({strategy})":
               plot_deltas(per_run[0], metric="rel", layer_map=lm)},
    )
