"""Upscaling gives room to train.

Seed: "Upscaling can 'provide room' for further training."

Operationalisation: per seed, the same pre-trained base is fine-tuned on the target domain
twice, as is ("normal") and after the upscale; both runs share the seed (data order), so the
effect is paired: held-out target loss at the end, upscale − normal. Claimed direction: < 0.
Cases: the upscale strategy.

Refuted if the CI lies wholly above 0: the upscale learns the target worse.
"""

from __future__ import annotations

from harness.claims.function import final
from harness.claims.measured import Measured
from harness.claims.measures import measure
from harness.claims.measures._cases import check_case

CASES = ("contiguous", "interleaved", "single", "block")


@measure("upscale_room")
def upscale_room(lab, seeds: list[int], case: str) -> Measured:
    strategy = check_case("upscale_room", case, CASES)
    normal = [lab.normal(seed) for seed in seeds]
    upscaled = [lab.upscaled(seed, strategy) for seed in seeds]
    effects = [final(u, "target") - final(n, "target") for u, n in zip(upscaled, normal)]
    return Measured(effects=effects, seeds=seeds, runs=[r.key for r in normal + upscaled])
