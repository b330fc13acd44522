"""Training harder widens the upscale's retention advantage.

Seed: "What if we train it harder via learning rate or epoch?"; "Using the same LR on a larger
model should have been more destructive. In practice, the duplicated layers must have saved the
upscale from becoming dumber than Cydonia."

Operationalisation: per seed, four fine-tunes of the same pre-trained base on the target domain:
normal and contiguous upscale, each at the default LR and at 10/3 of it (the default two epochs each).
Retention gap = held-out original-domain answer loss at the end, upscale − normal (paired by
seed; the upscale is the same function as the base at step 0, so this is also the difference of
the loss rises). `upscale_retains_more` claims the gap is < 0; "training harder" should make the
duplicates' protection matter more, so the gap grows in magnitude. Effect = gap(high LR) −
gap(default LR), in units of the default-LR normal fine-tune's target gain of the same seed
(`function.per_gain`). Claimed direction: < 0 (the upscale's advantage widens with the LR). One
case: contiguous.

Refuted when the refutation test (Holm-adjusted) shows the effect above -sesoi — no effect of interest, or the opposite direction: at the higher LR the upscale keeps less of its advantage
(or loses more than the normal model). Reading it: where the high LR erases the original domain
in both models, the high-LR gap compares two erased models; the plot shows the losses behind it.
"""

from __future__ import annotations

from harness.claims.function import per_gain
from harness.claims.measured import Measured
from harness.claims.measures import measure
from harness.claims.measures._cases import check_case
from harness.plots import new_figure

CASES = ("contiguous",)
# The default fine-tune's LR and 10/3 of it (tiny: 6e-3 and 2e-2; at 4e-3's 10/3, 1.33e-2, seeds 1
# and 2 of four lost most of the original domain in the issue-26 trials)
HARDER = 10 / 3


def original_loss(run) -> float:
    return run.scores()["original"]["loss"]


def gap_plot(lrs, gaps, losses, seeds):
    fig = new_figure(10.0, 3.2)
    ax1, ax2 = fig.subplots(1, 2)
    for k, s in enumerate(seeds):
        ax1.plot(range(len(lrs)), [g[k] for g in gaps], "o-", color="#1f5f8b", alpha=0.7)
        ax1.annotate(str(s), (len(lrs) - 1, gaps[-1][k]), xytext=(4, 0), textcoords="offset points",
                     fontsize=7)
    ax1.axhline(0, color="black", lw=0.6)
    ax1.set_xticks(range(len(lrs)), [f"lr {lr:g}" for lr in lrs])
    ax1.set_ylabel("original-domain loss, upscale − normal")
    ax1.set_title("retention gap per seed (< 0: upscale retains more)", fontsize=9)
    for kind, style in (("normal", "s--"), ("upscale", "o-")):
        for j, lr in enumerate(lrs):
            ax2.plot([j] * len(seeds), losses[kind][j], style[0], alpha=0.6,
                     color="#b03a2e" if kind == "upscale" else "#1f5f8b",
                     label=kind if j == 0 else None)
    ax2.set_xticks(range(len(lrs)), [f"lr {lr:g}" for lr in lrs])
    ax2.set_ylabel("original-domain loss at the end")
    ax2.set_title("forgetting: normal vs upscale", fontsize=9)
    ax2.legend(fontsize=7)
    return fig


@measure("harder_training")
def harder_training(lab, seeds: list[int], case: str) -> Measured:
    strategy = check_case("harder_training", case, CASES)
    lab.needs("original")
    lrs = (lab.lr, float(f"{lab.lr * HARDER:.3g}"))
    normal = {lr: [lab.normal(seed, lr=lr) for seed in seeds] for lr in lrs}
    upscaled = {lr: [lab.upscaled(seed, strategy, lr=lr) for seed in seeds] for lr in lrs}
    losses = {"normal": [[original_loss(r) for r in normal[lr]] for lr in lrs],
              "upscale": [[original_loss(r) for r in upscaled[lr]] for lr in lrs]}
    gaps = [[u - n for u, n in zip(losses["upscale"][j], losses["normal"][j])] for j in range(len(lrs))]
    nats = [high - low for low, high in zip(gaps[0], gaps[-1])]
    return Measured(effects=per_gain(nats, normal[lrs[0]]), seeds=seeds,
                    runs=[r.key for lr in lrs for r in normal[lr] + upscaled[lr]],
                    notes={**{f"retention gap at lr {lr:g}": gaps[j] for j, lr in enumerate(lrs)},
                           "effect in nats (before dividing by the default normal arm's target gain)": nats},
                    plots=lambda: {"retention gap vs learning rate": gap_plot(lrs, gaps, losses, seeds)})
