"""The upscale breaks the smooth depth profile of change.

Seed: "The upscale clearly has an effect on training. Control A & B show a smooth gradient
unlike Control C & Sample A, B, C where the duplicated layers perturb the heatmap."

Operationalisation: per seed, the same base fine-tuned as is ("normal") and after the upscale,
sharing the seed (data order). Each run's change profile: per layer, the mean over the modules a
duplicate keeps (q, k, v, gate, up, both norms; the same set in both runs) of rel = ‖ΔW‖/‖W₀‖,
each module scaled to mean 1 over layers. Roughness: mean |second difference| of the profile
over its mean (0 for any straight line). Effect: roughness(upscale) − roughness(normal), paired
by seed. Claimed direction: > 0.

Refuted if the CI lies wholly below 0. Caveat: the upscale is deeper (14 vs 8 layers at tiny);
a smooth curve sampled at more layers has smaller second differences, so the comparison leans
*against* the claim; a jump (a perturbation) does not shrink with depth.
"""

from __future__ import annotations

import pytest

from harness.claims.patterns import FULL_SCALE, change_profile, plot_profiles, roughness
from harness.claims.lab import deltas
from fixtures.params import strategy_params
from harness.heatmap import plot_deltas

INCONCLUSIVE_CONTIGUOUS = (
    "8 seeds at tiny: roughness upscale − normal -0.001, 95% CI [-0.021, +0.024], p = 0.55, "
    "n = 8; both profiles have roughness about 0.10. The contiguous profile rises smoothly, "
    "steps up once into the duplicates and is flat across them, so at 8 -> 14 layers its "
    "roughness equals the plain run's; the depth difference leans against the claim (see "
    "docstring), so this is not evidence of no effect.")


@pytest.mark.parametrize("scale, strategy", strategy_params(["contiguous", "interleaved"]))
def test_upscale_perturbs_profile(scale, strategy, lab, seeds, claim):
    lm = lab.layer_map(strategy)
    normal = [lab.normal(seed) for seed in seeds]
    upscaled = [lab.upscaled(seed, strategy) for seed in seeds]
    normal_profiles = [change_profile(deltas(r, None), FULL_SCALE) for r in normal]
    up_rows = [deltas(r, lm) for r in upscaled]
    up_profiles = [change_profile(rows, FULL_SCALE) for rows in up_rows]
    effects = [roughness(u) - roughness(n) for u, n in zip(up_profiles, normal_profiles)]
    claim.check(
        id="upscale_perturbs_profile",
        statement="An upscale's depth profile of weight change is rougher than a plain "
                  "fine-tune's smooth gradient.",
        method="roughness = mean |2nd difference| / mean of the per-layer change profile "
               "(rel, kept modules scaled to mean 1); upscale − normal, paired by seed; "
               "sign-flip test",
        effects=effects, direction="greater", seeds=seeds,
        runs=[r.key for r in normal + upscaled],
        expected={"tiny": "inconclusive"} if strategy == "contiguous" else "supported",
        reason={"tiny": INCONCLUSIVE_CONTIGUOUS} if strategy == "contiguous" else None,
        plots={f"rel change, seed {seeds[0]} ({strategy})":
               plot_deltas(up_rows[0], metric="rel", layer_map=lm),
               f"change profiles, seed {seeds[0]}":
               plot_profiles({"normal (8 layers)": normal_profiles[0],
                              f"{strategy} (14 layers)": up_profiles[0]},
                             boundaries=lm.slice_starts(),
                             title="change profile: plain vs upscaled fine-tune")},
    )
