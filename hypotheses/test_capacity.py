"""Upscaling gives room to train.

Seed: "Upscaling can 'provide room' for further training."

Operationalisation: per seed, the same pre-trained tiny base is fine-tuned on the target domain
twice, as is ("normal") and after the upscale; both runs share the seed (data order), so the
effect is paired: held-out target loss at the end, upscale − normal. Claimed direction: < 0.

Refuted if the CI lies wholly above 0: the upscale learns the target worse.
"""

from __future__ import annotations

import pytest

from fixtures.params import strategy_params


@pytest.mark.parametrize("scale, strategy", strategy_params(["contiguous", "interleaved", "single", "block"]))
def test_upscale_room(scale, strategy, lab, seeds, claim):
    normal = [lab.normal(seed) for seed in seeds]
    upscaled = [lab.upscaled(seed, strategy) for seed in seeds]
    effects = [u.scores()["target"]["loss"] - n.scores()["target"]["loss"]
               for u, n in zip(upscaled, normal)]
    claim.check(
        id="upscale_room",
        statement="An upscaled model reaches a lower target-domain loss than the same base "
                  "fine-tuned without upscaling.",
        method="held-out target loss at the end, upscale − normal, paired by seed; sign-flip test",
        effects=effects, direction="less", seeds=seeds,
        runs=[r.key for r in normal + upscaled],
    )
