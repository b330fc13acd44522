"""Upscales keep more of the original behaviour.

Seed: "Training upscaled models will result in retaining more of the original model's
performance & behavior" and "the duplicated layers must have saved the upscale from becoming
dumber ... The larger model seems to have preserved more of its smarts".

Operationalisation: per seed, the same pre-trained base is fine-tuned on the target domain as is
("normal") and after the upscale, with the same LR, steps and data order (the seed's "same LR on
a larger model"). Retention cost = held-out original-domain loss rise from step 0 (for the
upscale, step 0 is the upscale as built, which computes the base's function, so both runs start
from the same loss). An arm that learns the target further in the same steps forgets more for
that reason alone, so the primary reads both arms at matched target loss
(`harness.claims.function.matched_rises`): the arm that ends with the lower target loss is read
where its target loss first reaches the other arm's final one (linear between snapshots), the
other at its end. Effect per seed: cost(upscale) − cost(normal) at those points, paired by seed.
Claimed direction: < 0. Cases: `contiguous` (matched, the primary), `interleaved` (matched),
`contiguous-conflict` (matched, both arms fine-tuned on the conflicting target, whose maps
contradict the original ones), `contiguous-same-steps` (the card's comparison: both read at the
end of the same steps, confounded by how far each arm learns). The steps each arm was read at,
whether the match was reached, and the target loss at the end (upscale − normal) are shown.

Refuted when the refutation test (Holm-adjusted) shows the effect above -sesoi — no effect of interest, or the opposite direction: at the same target loss the upscale has forgotten more of
the original domain.
"""

from __future__ import annotations

from harness.claims.function import curve, final, matched_notes, matched_rises, per_gain, rise
from harness.claims.figures import tradeoff_plot
from harness.claims.measured import Measured
from harness.claims.measures import measure
from harness.claims.measures._cases import check_case

CASES = ("contiguous", "contiguous-same-steps", "interleaved", "contiguous-conflict")
# case -> (upscale strategy, fine-tune target, read at matched target loss)
ARMS = {"contiguous": ("contiguous", "target", True), "contiguous-same-steps": ("contiguous", "target", False),
        "interleaved": ("interleaved", "target", True), "contiguous-conflict": ("contiguous", "conflict", True)}



@measure("upscale_retains_more", first=("contiguous-conflict",))
def upscale_retains_more(lab, seeds: list[int], case: str) -> Measured:
    strategy, target, matched = ARMS[check_case("upscale_retains_more", case, CASES)]
    lab.needs("original")
    normal = [lab.normal(seed, target=target) for seed in seeds]
    upscaled = [lab.upscaled(seed, strategy, target=target) for seed in seeds]
    notes = {"target loss at the end, upscale − normal":
             [final(u, "target") - final(n, "target") for u, n in zip(upscaled, normal)]}
    if matched:
        matches = [matched_rises(curve(u), curve(n)) for u, n in zip(upscaled, normal)]
        effects = [m.gap for m in matches]
        notes.update(matched_notes(matches, "upscale", "normal"))
    else:
        effects = [rise(u) - rise(n) for u, n in zip(upscaled, normal)]
    notes["effect in nats (before dividing by the normal arm's target gain)"] = list(effects)
    effects = per_gain(effects, normal)
    return Measured(effects=effects, seeds=seeds, runs=[r.key for r in normal + upscaled], notes=notes,
                    plots=lambda: {"target loss vs original loss rise, per seed":
                                   tradeoff_plot(upscaled, normal, seeds, (strategy, "normal"))})
