"""Upscales keep more of the original behaviour.

Seed: "Training upscaled models will result in retaining more of the original model's
performance & behavior" and "the duplicated layers must have saved the upscale from becoming
dumber ... The larger model seems to have preserved more of its smarts".

Operationalisation: per seed, the same pre-trained tiny base is fine-tuned on the target domain
as is ("normal") and after the upscale, with the same LR, steps and data order (the seed's
"same LR on a larger model"). Retention cost = held-out original-domain loss at the end − at
step 0 (for the upscale, step 0 is the upscale as built, which computes the base's function, so
both runs start from the same loss). Effect per seed: cost(upscale) − cost(normal), paired by
seed. Claimed direction: < 0.

Refuted if the CI lies wholly above 0: the upscale forgets more of the original domain.
"""

from __future__ import annotations

import pytest

from harness.claims.function import final, rise
from fixtures.params import strategy_params
from harness.plots import new_figure

# Flaw check (before recording the expectations below): step-0 original losses of the normal and
# the upscaled run equal the base's on every seed (the zeroed duplicates keep the base's
# function), both runs share seed, data order, LR, steps and held-out set. Diagnostic, not the
# test: read at the snapshot-interpolated point where the upscale's target loss equals the normal
# run's final target loss, the gap is ~0 (contiguous -0.155, +0.024, +0.084, +0.058, +0.014,
# +0.082, -0.063, -0.208): the upscale forgets more because it learns the target further in the
# same steps (upscale_room), not at a worse exchange rate.
_WHY = ("at tiny (seeds 0-7, default 1-epoch fine-tune at lr 3e-4) the upscale forgot MORE, not less, "
        "on {k}/8 seeds: per-seed upscale − normal {v}; mean {m:+.3f} nats, 95% CI [{lo:+.3f}, {hi:+.3f}], "
        "one-sided p = {p:.3f}, so neither supported nor (CI not wholly above 0) refuted. No flaw found "
        "(identical step-0 losses, shared seeds/data); at matched target loss the gap is ~0.")
EXPECTED = {"contiguous": {"tiny": "inconclusive"}, "interleaved": {"tiny": "inconclusive"}}
REASON = {
    "contiguous": {"tiny": _WHY.format(k=6, v="-0.066, +0.113, +0.193, +0.151, +0.107, +0.064, +0.378, -0.157",
                                       m=0.0979, lo=-0.0344, hi=0.231, p=0.934)},
    "interleaved": {"tiny": _WHY.format(k=7, v="+0.002, +0.217, +0.315, +0.190, +0.016, +0.086, +0.350, -0.136",
                                        m=0.130, lo=-0.00917, hi=0.263, p=0.969)},
}


def tradeoff_plot(normal, upscaled, seeds, strategy):
    fig = new_figure(5.0, 3.2)
    ax = fig.add_subplot()
    for runs, label, marker in ((normal, "normal", "o"), (upscaled, strategy, "s")):
        ax.scatter([final(r, "target") for r in runs], [rise(r) for r in runs], marker=marker, label=label)
    for n, u, s in zip(normal, upscaled, seeds):
        ax.plot([final(n, "target"), final(u, "target")], [rise(n), rise(u)], color="#999999", lw=0.6)
        ax.annotate(str(s), (final(u, "target"), rise(u)), fontsize=7, xytext=(3, 0), textcoords="offset points")
    ax.set_xlabel("target loss at end")
    ax.set_ylabel("original loss rise (end − step 0)")
    ax.legend(fontsize=7)
    return fig


@pytest.mark.parametrize("scale, strategy", strategy_params(["contiguous", "interleaved"]))
def test_upscale_retains_more(scale, strategy, lab, seeds, claim):
    lab.needs("original")
    normal = [lab.normal(seed) for seed in seeds]
    upscaled = [lab.upscaled(seed, strategy) for seed in seeds]
    effects = [rise(u) - rise(n) for u, n in zip(upscaled, normal)]
    claim.check(
        id="upscale_retains_more",
        statement="After the same fine-tune, an upscaled model has lost less of its original-domain "
                  "performance than the same base fine-tuned without upscaling.",
        method="held-out original-domain loss rise (end − step 0), upscale − normal, paired by seed; "
               "sign-flip test",
        effects=effects, direction="less", seeds=seeds,
        runs=[r.key for r in normal + upscaled],
        expected=EXPECTED[strategy], reason=REASON[strategy],
        plots={"target loss vs original loss rise, per seed": tradeoff_plot(normal, upscaled, seeds, strategy)},
    )
