"""Upscales keep more of the original behaviour.

Seed: "Training upscaled models will result in retaining more of the original model's
performance & behavior" and "the duplicated layers must have saved the upscale from becoming
dumber ... The larger model seems to have preserved more of its smarts".

Operationalisation: per seed, the same pre-trained base is fine-tuned on the target domain as is
("normal") and after the upscale, with the same LR, steps and data order (the seed's "same LR on
a larger model"). Retention cost = held-out original-domain loss at the end − at step 0 (for the
upscale, step 0 is the upscale as built, which computes the base's function, so both runs start
from the same loss). Effect per seed: cost(upscale) − cost(normal), paired by seed. Claimed
direction: < 0. Cases: the upscale strategy.

Refuted if the CI lies wholly above 0: the upscale forgets more of the original domain.

Flaw checks (done when the tiny results were first recorded): the step-0 original losses of the
normal and the upscaled run equal the base's on every seed (the zeroed duplicates keep the
base's function), and both runs share seed, data order, LR, steps and held-out set. Read at the
snapshot-interpolated point where the upscale's target loss equals the normal run's final target
loss, the gap was about 0: where the upscale forgets more, it is because it learns the target
further in the same steps (`upscale_room`), not at a worse exchange rate. The target loss at the
end (upscale − normal) is shown beside the effect for that reason.
"""

from __future__ import annotations

from harness.claims.function import final, rise
from harness.claims.measured import Measured
from harness.claims.measures import measure
from harness.claims.measures._cases import check_case
from harness.plots import new_figure

CASES = ("contiguous", "interleaved")


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


@measure("upscale_retains_more")
def upscale_retains_more(lab, seeds: list[int], case: str) -> Measured:
    strategy = check_case("upscale_retains_more", case, CASES)
    lab.needs("original")
    normal = [lab.normal(seed) for seed in seeds]
    upscaled = [lab.upscaled(seed, strategy) for seed in seeds]
    effects = [rise(u) - rise(n) for u, n in zip(upscaled, normal)]
    return Measured(effects=effects, seeds=seeds, runs=[r.key for r in normal + upscaled],
                    notes={"target loss at the end, upscale − normal":
                           [final(u, "target") - final(n, "target") for u, n in zip(upscaled, normal)]},
                    plots=lambda: {"target loss vs original loss rise, per seed":
                                   tradeoff_plot(normal, upscaled, seeds, strategy)})
