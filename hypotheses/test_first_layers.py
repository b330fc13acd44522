"""The first two layers change wildly in a fine-tune.

Seed: "(Not related to upscaling) The first two layers are sus - their weights are wildly
different from the original" and "In some layer types, the change difference for the first two
layers are overwhelmingly huge compared to the other layers".

Operationalisation: per training run (seed), fine-tune the base as is (no upscale); per module,
the relative change rel = ‖ΔW‖/‖W₀‖ of every layer from start to end. For each module, the robust
z of layers 0 and 1 against the median/MAD of the other layers (the suspects are left out of the
reference so they cannot inflate the scale), and the smaller of the two (both layers must stand
out). "In some layer type": the largest of these over modules. Effect: that z − 3 (an outlier
means z > 3). Claimed direction: > 0.

Refuted if the CI lies wholly below 0: in no module do both first layers reach 3 robust sds.
"""

from __future__ import annotations

import pytest

from harness.claims.patterns import first_layers_z
from harness.claims.lab import deltas
from fixtures.params import scales
from harness.heatmap import plot_deltas

THRESHOLD = 3.0  # robust z beyond which a layer counts as an outlier (the registry's "> 3")


@pytest.mark.parametrize("scale", scales())
def test_first_layers_outliers(scale, lab, seeds, claim):
    runs = [lab.normal(seed) for seed in seeds]
    per_run = [deltas(run, None) for run in runs]
    effects = [max(first_layers_z(rows).values()) - THRESHOLD for rows in per_run]
    claim.check(
        id="first_layers_outliers",
        statement="In a plain fine-tune, layers 0 and 1 change far more than the other layers "
                  "in some module type.",
        method="per module: min robust z (median/MAD of layers 2..L-1) of rel change of layers 0 "
               "and 1; max over modules, minus 3; sign-flip test over seeds",
        effects=effects, direction="greater", runs=[r.key for r in runs], seeds=seeds,
        expected={"tiny": "refuted"},
        reason={"tiny": "8 seeds at tiny: max over modules of min(z0, z1) − 3 = -4.83, 95% CI "
                        "[-5.55, -4.26], p = 1.0, n = 8: layers 0-1 change LESS than the rest "
                        "(z about -1.8 even in their most extreme module; ‖ΔW‖ instead of rel "
                        "gives -4.48, CI [-4.96, -4.12]). The 8-layer tiny base has no such "
                        "outliers; the seed's were in a 22B Mistral."},
        plots={f"rel change, plain fine-tune, seed {seeds[0]}":
               plot_deltas(per_run[0], metric="rel")},
    )
