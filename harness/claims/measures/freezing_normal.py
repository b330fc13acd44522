"""Freezing layers of a normal model does what the upscale does (for retention).

Seed: "### Can you replicate this effect on normal models by freezing layers?" ("this effect":
the stabilising one, that the upscale retains more of the original behaviour).

Operationalisation: per seed, the normal model fine-tuned with the layers that the upscale
duplicates frozen (at 8 layers: 3-5; `harness.claims.function.frozen_normal`, one extra run kind),
against the contiguous upscale's default fine-tune (same base, seed, data order, LR, steps). Why
those layers: the upscale inserts zeroed copies of exactly them, and those copies, not their
originals, are where the update goes (dups_more_responsive); freezing them in the normal model
is its nearest analogue of "that range's originals are shielded". The layers trainable in both
then match in count and position (at 8 layers: 0-2 and 6-7 of the normal model are the upscale's
originals outside the duplicated range, outputs 0-2, 12-13). Embeddings, final norm and head
train in both, as in the upscale's full fine-tune.

Effect per seed: original-domain loss rise (end − step 0), frozen normal − upscale. The claim is
an equivalence: the registry decides it by TOST within ±sesoi (its entry gives the sesoi and why);
this measure only computes the effects. The target loss (frozen normal − upscale) is shown beside
it: freezing can buy retention by learning the target less. One case: contiguous.

Refuted if the CI of the difference lies wholly outside ±sesoi on one side: freezing gives a
retention demonstrably different from the upscale's.
"""

from __future__ import annotations

from harness.claims.function import final, frozen_normal, rise
from harness.claims.measured import Measured
from harness.claims.measures import measure
from harness.claims.measures._cases import check_case

CASES = ("contiguous",)


@measure("freezing_replicates_effect")
def freezing_replicates_effect(lab, seeds: list[int], case: str) -> Measured:
    strategy = check_case("freezing_replicates_effect", case, CASES)
    lab.needs("original")
    mode = frozen_normal(lab.layer_map(strategy))
    frozen = [lab.normal(seed, mode=mode) for seed in seeds]
    upscaled = [lab.upscaled(seed, strategy) for seed in seeds]
    effects = [rise(f) - rise(u) for f, u in zip(frozen, upscaled)]
    return Measured(effects=effects, seeds=seeds, runs=[r.key for r in frozen + upscaled],
                    notes={"target loss at the end, frozen normal − upscale":
                           [final(f, "target") - final(u, "target") for f, u in zip(frozen, upscaled)]})
