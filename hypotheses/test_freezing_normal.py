"""Freezing layers of a normal model does what the upscale does (for retention).

Seed: "### Can you replicate this effect on normal models by freezing layers?" ("this effect":
the stabilising one, that the upscale retains more of the original behaviour).

Operationalisation: per seed, the normal model fine-tuned with its layers 3-5 frozen (one extra
run kind), against the contiguous upscale's default fine-tune (same base, seed, data order, LR,
steps). Why 3-5: the upscale inserts zeroed copies of exactly 3-5, and those copies, not their
originals, are where the update goes (dups_more_responsive); freezing 3-5 in the normal model
is its nearest analogue of "that range's originals are shielded". The layers trainable in both
then match in count and position: 0-2 and 6-7 of the normal model are the upscale's originals
outside the duplicated range (outputs 0-2, 12-13). Embeddings, final norm and head train in
both, as in the upscale's full fine-tune.

Effect per seed: original-domain loss rise (end − step 0), frozen normal − upscale. Claim:
equivalent within ±SESOI, decided by TOST (harness.stats.decide_equivalence).

SESOI = 0.1 nats per answer token, fixed before any frozen-normal result was looked at: a difference
in per-token loss below 0.1 (perplexity within ~10 %) is below what "keeps more of its smarts"
could mean; it is ~7 % of the typical rise of ~1.4 nats after the default tiny fine-tune
(harness.runs.spec: the default erodes the original domain partly).

Refuted if the CI of the difference lies wholly outside ±SESOI on one side: freezing gives a
retention demonstrably different from the upscale's.
"""

from __future__ import annotations

import pytest

from harness.claims.function import final, frozen_normal, rise
from fixtures.params import strategy_params
from harness.plots import effects_strip
from harness.stats import decide_equivalence

SESOI = 0.1  # nats/token of held-out original-domain loss; see the module docstring


@pytest.mark.parametrize("scale, strategy", strategy_params(["contiguous"]))
def test_freezing_replicates_effect(scale, strategy, lab, seeds, alpha, claim):
    lab.needs("original")
    mode = frozen_normal(lab.layer_map(strategy))
    frozen = [lab.normal(seed, mode=mode) for seed in seeds]
    upscaled = [lab.upscaled(seed, strategy) for seed in seeds]
    effects = [rise(f) - rise(u) for f, u in zip(frozen, upscaled)]
    decision = decide_equivalence(effects, sesoi=SESOI, alpha=alpha)
    target = [final(f, "target") - final(u, "target") for f, u in zip(frozen, upscaled)]
    mean = sum(effects) / len(effects)
    claim.check_decision(
        decision,
        id="freezing_replicates_effect",
        expected={"tiny": "inconclusive"},
        reason={"tiny": "at tiny (seeds 0-7) freezing layers 3-5 of the normal model tended to retain MORE "
                        "than the upscale: per-seed rise difference (frozen normal − upscale) +0.217, "
                        "-0.449, -0.258, +0.024, +0.030, -0.261, -0.245, -0.206; mean -0.144 nats, 95% CI "
                        "[-0.315, +0.043] reaches outside ±0.1 (TOST p = 0.72, not equivalent) but is not "
                        "wholly outside it (not refuted). It also learned the target less (target loss "
                        "frozen − upscale, mean +0.365)."},
        statement="A normal model fine-tuned with layers frozen retains the original domain as well "
                  "as the upscale does (equivalent within the smallest effect of interest).",
        method=f"original loss rise (end − step 0), normal with layers {list(mode.layers)} frozen "
               f"− {strategy} upscale, paired by seed; TOST equivalence within ±{SESOI:g} nats/token "
               f"(sign-flip). Effect shown as margin sesoi − |mean|. Target loss frozen − upscale, "
               f"reported: mean {sum(target) / len(target):+.4g}",
        effects=effects, seeds=seeds, sesoi=SESOI, runs=[r.key for r in frozen + upscaled],
        plots={"per-seed differences (frozen normal − upscale)": effects_strip(
            effects, seeds=seeds, sesoi=SESOI, effect=mean,
            title="freezing_replicates_effect at tiny: equivalence within ±SESOI",
            xlabel="original loss rise, frozen normal − upscale")},
    )
