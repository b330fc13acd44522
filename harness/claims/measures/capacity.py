"""Upscaling gives room to train.

Seed: "Upscaling can 'provide room' for further training."

Operationalisation: per seed, the same pre-trained base is fine-tuned on the target domain
twice, as is ("normal") and after the upscale; both runs share the seed (data order), so the
effect is paired: held-out target loss at the end, upscale − normal. Claimed direction: < 0.
Cases: the upscale strategy; and `contiguous-vs-deep-base`, which separates room from parameter
count: the contiguous upscale against the fine-tune (same seed, data, LR, steps) of a base
pre-trained natively at the upscale's depth. An upscale no better than a natively deep model adds
parameters, not room.

Refuted if the CI lies wholly above 0: the upscale learns the target worse.
"""

from __future__ import annotations

from harness.claims.function import final
from harness.claims.measured import Measured
from harness.claims.measures import measure
from harness.claims.measures._cases import check_case

CASES = ("contiguous", "contiguous-vs-deep-base", "interleaved", "single", "block")
DEEP = "-vs-deep-base"


# Its deep bases (pre-trained at the upscale's depth, 28 layers at tiny) take longer than the
# bases every claim shares: started first, they train beside those rather than after them.
@measure("upscale_room", first=("contiguous" + DEEP,))
def upscale_room(lab, seeds: list[int], case: str) -> Measured:
    check_case("upscale_room", case, CASES)
    strategy = case.removesuffix(DEEP)
    if case.endswith(DEEP):
        depth = lab.layer_map(strategy).num_layers
        other = [lab.normal(seed, depth=depth) for seed in seeds]
    else:
        other = [lab.normal(seed) for seed in seeds]
    upscaled = [lab.upscaled(seed, strategy) for seed in seeds]
    effects = [final(u, "target") - final(n, "target") for u, n in zip(upscaled, other)]
    return Measured(effects=effects, seeds=seeds, runs=[r.key for r in other + upscaled])
