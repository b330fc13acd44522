"""Upscaling gives room to train.

Seed: "Upscaling can 'provide room' for further training."

Operationalisation: per seed, held-out target loss at the end of the contiguous upscale's
fine-tune minus that of a base pre-trained natively at the upscale's depth and fine-tuned the
same way (same seed, data, LR, steps), in units of the normal (not upscaled) fine-tune's target
gain of the same seed (`function.per_gain`), so the sesoi is the same share of what a fine-tune
learns at every scale. The primary (`contiguous-vs-deep-base`) separates room from parameter
count: an upscale no better than a natively deep model adds parameters, not room. Claimed
direction: < 0. Exploratory cases: the upscale strategy against the normal model (the card's
comparison, decided by size as much as by room).

Refuted when the effect is shown above -sesoi: the upscale learns the target no better than a
native model of its depth, by any amount of interest.
"""

from __future__ import annotations

from harness.claims.function import final, per_gain
from harness.claims.measured import Measured
from harness.claims.measures import measure
from harness.claims.measures._cases import check_case

CASES = ("contiguous-vs-deep-base", "contiguous", "interleaved", "single", "block")
DEEP = "-vs-deep-base"


# Its deep bases (pre-trained at the upscale's depth, 18 layers at tiny) take longer than the
# bases every claim shares: started first, they train beside those rather than after them.
@measure("upscale_room", first=("contiguous" + DEEP,))
def upscale_room(lab, seeds: list[int], case: str) -> Measured:
    check_case("upscale_room", case, CASES)
    strategy = case.removesuffix(DEEP)
    if case.endswith(DEEP):
        # the deep bases first: started first (`first=`), they train while another worker trains
        # the shared 10-layer bases that every other claim (and this one's unit) needs
        depth = lab.layer_map(strategy).num_layers
        other = [lab.normal(seed, depth=depth) for seed in seeds]
        normal = [lab.normal(seed) for seed in seeds]
    else:
        other = normal = [lab.normal(seed) for seed in seeds]
    upscaled = [lab.upscaled(seed, strategy) for seed in seeds]
    nats = [final(u, "target") - final(n, "target") for u, n in zip(upscaled, other)]
    return Measured(effects=per_gain(nats, normal), seeds=seeds,
                    runs=[r.key for r in {r.key: r for r in normal + other + upscaled}.values()],
                    notes={"target loss at the end in nats (before dividing by the normal arm's gain)": nats})
