"""A duplicated slice is more connected within itself than to the rest of the model.

Seed: "These slice of layers are more connected to each other than to the model's entirety."
(A takeaway from each slice having its own gradient.)

Operationalisation: per training run (seed) of the contiguous upscale (two 3-layer slices of
copies at tiny). Each duplicate layer's change pattern: the vector over the kept modules (q, k,
v, gate, up, both norms) of log rel = log ‖ΔW‖/‖W₀‖ from the upscale as built to the end, minus
each module's mean over the duplicates (so "duplicates change more than originals", another
claim, does not count). Similarity: cosine of two layers' patterns. Effect: mean similarity of
pairs within one slice − mean similarity of matched pairs across slices: duplicates with
different sources (copies of one source start identical) no further apart than the farthest
within-slice pair (neighbours change alike in any model). Claimed direction: > 0.

Refuted if the CI lies wholly below 0: layers across the boundary change more alike.
"""

from __future__ import annotations

import pytest

from harness.claims.patterns import slice_pair_similarity
from harness.claims.lab import deltas
from fixtures.params import strategy_params
from harness.heatmap import plot_deltas


@pytest.mark.parametrize("scale, strategy", strategy_params(["contiguous"]))
def test_slices_self_connected(scale, strategy, lab, seeds, claim):
    lm = lab.layer_map(strategy)
    runs = [lab.upscaled(seed, strategy) for seed in seeds]
    per_run = [deltas(run, lm) for run in runs]
    effects = [w - b for w, b in (slice_pair_similarity(rows, lm) for rows in per_run)]
    claim.check(
        id="slices_self_connected",
        statement="Layers inside one duplicated slice change more alike than layers in "
                  "different slices.",
        method="cosine similarity of centred log-rel module patterns: within-slice pairs − "
               "distance-matched, different-source pairs across slices; sign-flip test over seeds",
        effects=effects, direction="greater", runs=[r.key for r in runs], seeds=seeds,
        expected={"tiny": "inconclusive"},
        reason={"tiny": "8 seeds at tiny: within − between similarity +0.105, 95% CI "
                        "[-0.066, +0.325], p = 0.12, n = 8 (7 of 8 seeds > 0; one at -0.23). "
                        "Without the distance match (all different-source pairs across slices, "
                        "up to 5 layers apart) it is +0.203, CI [+0.096, +0.385], p = 0.004, but "
                        "that mixes in how similarity falls with depth distance."},
        plots={f"rel change, seed {seeds[0]} ({strategy})":
               plot_deltas(per_run[0], metric="rel", layer_map=lm)},
    )
