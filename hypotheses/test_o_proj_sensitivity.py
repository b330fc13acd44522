"""A duplicate's o_proj is less sensitive to training than its down_proj.

Seed: "The duplicated layers in `o_proj` are less sensitive for some reason." (Impressions, on
the diff heatmaps of the 39B upscale; in the duplicates o_proj and down_proj start at zero.)

Operationalisation: per training run (seed), fine-tune the upscale and, in the duplicate layers,
take each zeroed module's fill = ‖W‖ / ‖W_src‖ at the end (its norm relative to the layer it was
cloned from; from zero, everything it holds is change). Effect: log(mean fill of o_proj / mean
fill of down_proj) over the duplicates, i.e. how far o_proj has refilled compared with the other
zeroed module. Claimed direction: < 0.

Refuted if the CI lies wholly above 0: o_proj refills faster than down_proj.
"""

from __future__ import annotations

import pytest

from harness.claims.patterns import dup_fill_log_ratio, dup_fill_log_ratios
from harness.claims.lab import deltas
from fixtures.params import strategy_params
from harness.heatmap import plot_deltas

REFUTED = {
    "contiguous": "8 seeds at tiny: o_proj fills MORE than down_proj in every duplicate layout "
                  "but one seed: mean log ratio +0.208, 95% CI [+0.062, +0.321], p(less) = 0.996, "
                  "n = 8 (CI wholly above 0). A weaker reading (o_proj's dup/orig contrast in ‖W‖ "
                  "vs down_proj's) is flat: -0.007, CI [-0.063, +0.057]; neither shows a less "
                  "sensitive o_proj at 8 layers.",
    "interleaved": "8 seeds at tiny: mean log(fill o_proj / fill down_proj) +0.224, 95% CI "
                   "[+0.124, +0.304], p(less) = 1.0, n = 8 (CI wholly above 0): o_proj refills "
                   "faster than down_proj here too.",
}


@pytest.mark.parametrize("scale, strategy", strategy_params(["contiguous", "interleaved"]))
def test_o_proj_less_sensitive(scale, strategy, lab, seeds, claim):
    lm = lab.layer_map(strategy)
    runs = [lab.upscaled(seed, strategy) for seed in seeds]
    per_run = [deltas(run, lm) for run in runs]
    effects = [dup_fill_log_ratio(rows, lm, "o_proj", "down_proj") for rows in per_run]
    claim.check(
        id="o_proj_less_sensitive",
        statement="In the duplicated layers, o_proj changes (refills) less than down_proj.",
        method="log(mean fill of o_proj / mean fill of down_proj) over duplicate layers, fill = "
               "‖W‖/‖W_src‖ at the end of the fine-tune; sign-flip test over seeds",
        effects=effects, direction="less", runs=[r.key for r in runs], seeds=seeds,
        within=(dup_fill_log_ratios(per_run[0], lm),),
        expected={"tiny": "refuted"}, reason={"tiny": REFUTED[strategy]},
        plots={f"fill of the zeroed modules, seed {seeds[0]} ({strategy})":
               plot_deltas(per_run[0], metric="fill", layer_map=lm)},
    )
