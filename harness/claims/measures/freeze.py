"""Train only the duplicates: freezing the originals of the upscale.

Seed: "### How would it perform and look like if we freeze the original layers?"

Operationalisation: per seed, the contiguous upscale fine-tuned with every orig layer frozen, and
embeddings, final norm and head frozen too (LLaMA Pro's recipe: only the new blocks train; one
extra run kind), against the default full fine-tune of the same upscale (same seed, data order,
LR, steps). Retention cost: held-out original-domain loss rise from step 0. Freezing every
original must reduce forgetting after the same steps, because it learns less, so the primary
(`contiguous`) reads both arms at matched target loss, as upscale_retains_more does
(`harness.claims.function.matched_rises`): effect = cost(frozen) − cost(full) there, paired by
seed, in units of the normal fine-tune's target gain of the same seed (`function.per_gain`).
Claimed direction: < 0 (freezing forgets less at the same target loss). Secondary
`contiguous-same-steps`: both read at the end (holds by construction). The steps each arm was
read at, whether the match was reached, and the target loss at the end (frozen − full: what
freezing costs in learning) are shown per seed.

Refuted when the refutation test (Holm-adjusted) shows the effect above -sesoi — no effect of interest, or the opposite direction: at the same target loss the frozen upscale forgets more.
"""

from __future__ import annotations

from harness.claims.function import (curve, final, freeze_originals as frozen_mode, matched_notes,
                                     matched_rises, per_gain, rise)
from harness.claims.figures import tradeoff_plot
from harness.claims.measured import Measured
from harness.claims.measures import measure
from harness.claims.measures._cases import check_case

CASES = ("contiguous", "contiguous-same-steps")



@measure("freeze_originals")
def freeze_originals(lab, seeds: list[int], case: str) -> Measured:
    check_case("freeze_originals", case, CASES)
    lab.needs("original")
    mode = frozen_mode(lab.layer_map("contiguous"))
    frozen = [lab.upscaled(seed, "contiguous", mode=mode) for seed in seeds]
    full = [lab.upscaled(seed, "contiguous") for seed in seeds]
    notes = {"target loss at the end, frozen − full":
             [final(a, "target") - final(b, "target") for a, b in zip(frozen, full)]}
    if case == "contiguous":
        matches = [matched_rises(curve(a), curve(b)) for a, b in zip(frozen, full)]
        effects = [m.gap for m in matches]
        notes.update(matched_notes(matches, "frozen", "full"))
    else:
        effects = [rise(a) - rise(b) for a, b in zip(frozen, full)]
    normal = [lab.normal(seed) for seed in seeds]
    notes["effect in nats (before dividing by the normal arm's target gain)"] = list(effects)
    effects = per_gain(effects, normal)
    return Measured(effects=effects, seeds=seeds, runs=[r.key for r in frozen + full + normal], notes=notes,
                    plots=lambda: {"target loss vs original loss rise, per seed":
                                   tradeoff_plot(frozen, full, seeds, ("originals frozen", "full fine-tune"))})
