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

Effect per seed: original-domain loss rise, frozen normal − upscale, read at matched target loss
(`function.matched_rises`: a frozen arm forgets less because it learns less, so the arm that
learns further is read where its target loss reaches the other's final one), in units of the
normal fine-tune's target gain of the same seed (`function.per_gain`). Since both are read
against the same normal model, this is (frozen − normal) − (upscale − normal): whether freezing
reproduces the *upscale's* retention effect. The claim is an equivalence: the registry decides it
by TOST within ±sesoi; this measure only computes the effects. Beside it: the same-steps
difference and the target loss at the end. One case: contiguous.

Refuted when a difference of at least the sesoi is shown: freezing gives a retention effect
demonstrably different from the upscale's.
"""

from __future__ import annotations

from harness.claims.figures import tradeoff_plot
from harness.claims.function import (curve, final, frozen_normal, matched_notes, matched_rises,
                                     per_gain, rise)
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
    normal = [lab.normal(seed) for seed in seeds]
    matches = [matched_rises(curve(f), curve(u)) for f, u in zip(frozen, upscaled)]
    nats = [m.gap for m in matches]
    notes = {"target loss at the end, frozen normal − upscale":
             [final(f, "target") - final(u, "target") for f, u in zip(frozen, upscaled)],
             "original loss rise after the same steps, frozen normal − upscale":
             [rise(f) - rise(u) for f, u in zip(frozen, upscaled)],
             "effect in nats (before dividing by the normal arm's target gain)": nats,
             **matched_notes(matches, "frozen normal", "upscale")}
    return Measured(effects=per_gain(nats, normal), seeds=seeds,
                    runs=[r.key for r in frozen + upscaled + normal], notes=notes,
                    plots=lambda: {"target loss vs original loss rise, per seed":
                                   tradeoff_plot(frozen, upscaled, seeds, ("frozen normal", strategy))})
