"""Restoring the first two layers from the base recovers original-domain performance.

Seed: "(Not related to upscaling) The first two layers are sus - their weights are wildly
different from the original. I wonder if we could recover smarts by merging that back in with
base, or if those layers contain the most influence and must be preserved."

Operationalisation: per seed, the normal fine-tune (no upscale, as the seed says it is not
related to upscaling). Reset decoder layers 0 and 1 to the base's weights (the run's step-0
snapshot; embeddings and the other layers keep their fine-tuned weights). Effect: held-out
original-domain loss after the reset − before. Claimed direction: < 0 (smarts recovered). The
target-domain cost of the same reset (after − before) is shown next to it per seed.

Refuted if the CI lies wholly above 0: restoring layers 0-1 makes the original domain worse,
i.e. the fine-tuned first layers must be preserved (the seed's other alternative).
"""

from __future__ import annotations

import pytest

from harness.claims.function import heldout, loss, reset_loss
from fixtures.params import scales
from harness.plots import new_figure

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


@pytest.mark.parametrize("scale", scales())
def test_merge_back_first_layers(scale, lab, seeds, claim):
    lab.needs("original")
    runs = [lab.normal(seed) for seed in seeds]
    orig_change, target_change = [], []
    for run in runs:
        model, base = run.model(), run.state_dict(0)
        for domain, out in (("original", orig_change), ("target", target_change)):
            data = heldout(run, domain)
            out.append(reset_loss(model, data, RESTORED, base) - loss(model, data))
    mean_cost = sum(target_change) / len(target_change)
    claim.check(
        id="merge_back_first_layers",
        statement="Resetting a fine-tuned model's layers 0-1 to the base's weights lowers its "
                  "original-domain loss.",
        method="normal fine-tune; held-out original loss with layers 0-1 reset to step 0 − without; "
               f"sign-flip test. Target cost (after − before), reported: mean {mean_cost:+.4g}, per seed "
               + ", ".join(f"{c:+.3g}" for c in target_change),
        effects=orig_change, direction="less", seeds=seeds, runs=[r.key for r in runs],
        plots={"original gain vs target cost of the reset, per seed": cost_plot(orig_change, target_change, seeds)},
    )
