"""Restoring the first two layers from the base recovers original-domain performance.

Seed: "(Not related to upscaling) The first two layers are sus - their weights are wildly
different from the original. I wonder if we could recover smarts by merging that back in with
base, or if those layers contain the most influence and must be preserved."

Operationalisation: per seed, the normal fine-tune (no upscale, as the seed says it is not
related to upscaling). Reset decoder layers 0 and 1 to the base's weights (the run's step-0
snapshot; embeddings and the other layers keep their fine-tuned weights). Effect: held-out
original-domain loss after the reset − before. Claimed direction: < 0 (smarts recovered). The
target-domain cost of the same reset (after − before) is shown next to it per seed. One case:
normal.

Refuted if the CI lies wholly above 0: restoring layers 0-1 makes the original domain worse,
i.e. the fine-tuned first layers must be preserved (the seed's other alternative).
"""

from __future__ import annotations

from harness.claims.function import heldout, loss, reset_loss
from harness.claims.measured import Measured
from harness.claims.measures import measure
from harness.claims.measures._cases import check_case
from harness.plots import new_figure

CASES = ("normal",)
RESTORED = (0, 1)


def cost_plot(orig_change, target_change, seeds):
    fig = new_figure(5.0, 3.0)
    ax = fig.add_subplot()
    ax.scatter(orig_change, target_change)
    for x, y, s in zip(orig_change, target_change, seeds):
        ax.annotate(str(s), (x, y), fontsize=7, xytext=(3, 0), textcoords="offset points")
    ax.axvline(0, color="black", lw=0.6)
    ax.axhline(0, color="black", lw=0.6)
    ax.set_xlabel("original loss change (after reset − before)")
    ax.set_ylabel("target loss change (cost)")
    return fig


@measure("merge_back_first_layers")
def merge_back_first_layers(lab, seeds: list[int], case: str) -> Measured:
    check_case("merge_back_first_layers", case, CASES)
    lab.needs("original")
    runs = [lab.normal(seed) for seed in seeds]
    orig_change, target_change = [], []
    for run in runs:
        model, base = run.model(), run.state_dict(0)
        for domain, out in (("original", orig_change), ("target", target_change)):
            data = heldout(run, domain)
            out.append(reset_loss(model, data, RESTORED, base) - loss(model, data))
    return Measured(effects=orig_change, seeds=seeds, runs=[r.key for r in runs],
                    notes={"target loss change of the reset (cost)": target_change},
                    plots=lambda: {"original gain vs target cost of the reset, per seed":
                                   cost_plot(orig_change, target_change, seeds)})
