"""One duplicated layer fills faster than five.

Seed: "What if we duplicate only ONE layer? What about five layers? Will fewer empty layers
dampen the stabilizing effect? Will the few empty layers get 'filled' quickly? ... Will there be a
greater concentration of weight change in the duplicate layers? Or will it spill out to the
original layers?"

Operationalisation: per seed, two upscales of the same base, fine-tuned alike (1 epoch, lr
3e-4): `single` (layer 3 duplicated once, right after itself) and a five-layer block (layers
1–5 duplicated once after layer 5, `strategies.contiguous(1, 6, copies=1)`: it contains layer 3
and ends where the seed's range ends at tiny depth; at other depths the five layers end where
the seed's range ends, or start at the single's layer when that would leave it out). Fill per
duplicate = mean over the duplicates of ‖W_end‖ / ‖W_source‖ of the zeroed o_proj and down_proj.
Effect: fill(single) − fill(five), paired by seed. Claimed direction: > 0.

Reported, not decided: the same fill early in the run (step 16, before the fill levels off; see
`dups_saturate`), spill into the originals (mean rel change of the original layers, all modules)
and retention (original-domain loss at the end), single vs five, in the plots.

Refuted if the CI lies wholly below 0: each of five duplicates fills more than a lone one.
"""

from __future__ import annotations

import numpy as np
import pytest

from harness.claims.time import mean_fill, role_of
from harness.claims.lab import deltas, seed_layout_range
from fixtures.params import scale_grid
from harness import strategies
from harness.plots import new_figure

CASES = ("single", "five")
EARLY = 16  # a default snapshot before the fill levels off


def five_block(depth: int):
    """Five layers duplicated once: ending where the seed's range ends, holding the single's layer."""
    start, end = seed_layout_range(depth)
    first = end - 5 if end - 5 <= start else start
    return strategies.contiguous(max(first, 0), max(first, 0) + 5, num_layers=depth, copies=1)


def orig_rel(rows, lm) -> float:
    roles = role_of(lm)
    return float(np.mean([r.rel for r in rows
                          if r.layer is not None and roles[r.layer] == "orig" and r.rel is not None]))


def paired_plot(panels, seeds):
    fig = new_figure(12.0, 3.0)
    for ax, (title, (a, b)) in zip(fig.subplots(1, len(panels)), panels.items()):
        for k, s in enumerate(seeds):
            ax.plot([0, 1], [a[k], b[k]], "o-", color="#1f5f8b", alpha=0.7)
        ax.set_xticks([0, 1], list(CASES))
        ax.set_xlim(-0.3, 1.3)
        ax.set_title(title, fontsize=9)
    return fig


@pytest.mark.parametrize("scale, pair", scale_grid({"single-vs-five": CASES}))
def test_fewer_dups_fill_faster(scale, pair, lab, seeds, claim):
    lab.needs_training("upscales of two layouts")
    plans = {"single": lab.plan("single"), "five": five_block(lab.setting.depth)}
    assert tuple(plans) == pair
    maps = {name: lab.map_of(plan) for name, plan in plans.items()}
    runs = {name: [lab.finetuned(seed, plan) for seed in seeds] for name, plan in plans.items()}
    rows = {name: [deltas(r, maps[name]) for r in runs[name]] for name in plans}
    fill = {name: [mean_fill(x) for x in rows[name]] for name in plans}
    early = {name: [mean_fill(deltas(r, maps[name], 0, EARLY)) for r in runs[name]] for name in plans}
    spill = {name: [orig_rel(x, maps[name]) for x in rows[name]] for name in plans}
    kept = {name: [r.scores().get("original", {}).get("loss", float("nan")) for r in runs[name]]
            for name in plans}
    effects = [a - b for a, b in zip(fill["single"], fill["five"])]
    claim.check(
        id="fewer_dups_fill_faster",
        statement="A single duplicated layer fills more, per duplicate, than each of five "
                  "duplicated layers under the same fine-tune.",
        method="1-epoch fine-tunes (lr 3e-4) of single (dup of layer 3) and a five-layer block "
               "(dups of 1-5 after 5); mean fill of dup o_proj/down_proj at the end, single - "
               "five, paired by seed; sign-flip test. Plots: the fill at step 16, spill (mean rel "
               "change of originals) and retention (original-domain loss), single vs five",
        effects=effects, direction="greater", seeds=seeds,
        expected={"tiny": "inconclusive"},
        reason={"tiny": "end fill per dup, single - five = +0.0044, 95% CI [-0.0014, +0.0098], "
                        "p = 0.059, n = 8: within one epoch every duplicate's fill levels off near "
                        "0.13-0.23 whatever the number of duplicates (dups_saturate); early (step "
                        "16) the lone duplicate is even behind (-0.0089, CI [-0.0118, -0.0056]). "
                        "What differs is spill: originals change more with one duplicate "
                        "(mean rel +0.0095, CI [+0.0077, +0.0115])"},
        runs=[r.key for name in plans for r in runs[name]],
        plots={"fill, spill and retention: single vs five": paired_plot({
            "fill per duplicate (end)": (fill["single"], fill["five"]),
            f"fill per duplicate (step {EARLY})": (early["single"], early["five"]),
            "spill: rel change of originals": (spill["single"], spill["five"]),
            "retention: original-domain loss": (kept["single"], kept["five"])}, seeds)},
    )
