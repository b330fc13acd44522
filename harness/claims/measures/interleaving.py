"""Interleaving gives a more balanced upscale.

Seed: "[Question] What if we interleave original and duplicate layers? Will that result in a
more balanced, responsive upscale?" (Proposed Upscale Technique: each layer of the range
followed by its two zeroed copies, 0XX0XX0XX, instead of 000XXXXXX.)

Operationalisation: per seed, the same base upscaled two ways over the same range (at 8 layers:
3-5, two copies each) and fine-tuned identically. In each run, per duplicate layer, the mean
relative change rel = ‖ΔW‖/‖W₀‖ (step 0 -> end) over the full-scale modules (as in
dups_more_responsive); "balance" is low dispersion across the duplicates: the coefficient of
variation (SD / mean) of those per-layer values, which does not depend on the overall size of
the change. Effect: CV(interleaved) − CV(contiguous), paired by seed. Claimed direction: < 0.
The target loss (interleaved − contiguous, the seed's "responsive") is shown per seed beside it.
One case: interleaved-vs-contiguous.

Refuted when the refutation test (Holm-adjusted) shows the effect above -sesoi — no effect of interest, or the opposite direction: interleaving spreads the change less evenly. Reading a
refutation: copies of one source change alike in either layout, so a CV across duplicates is
partly the difference between the duplicated sources, which the two layouts may show to
different degrees; the per-layer profile plot shows which.
"""

from __future__ import annotations

from harness.claims.function import coefficient_of_variation, final, per_layer_mean_rel
from harness.claims.lab import deltas
from harness.claims.measured import Measured
from harness.claims.measures import measure
from harness.claims.measures._cases import check_case
from harness.claims.patterns import FULL_SCALE
from harness.plots import new_figure

CASES = ("interleaved-vs-contiguous",)
STRATEGIES = ("interleaved", "contiguous")


def dup_cv(run, lm) -> tuple[float, dict[int, float]]:
    per_layer = per_layer_mean_rel(deltas(run, lm), FULL_SCALE)
    dups = {i: v for i, v in per_layer.items() if lm.layers[i].role == "dup"}
    return coefficient_of_variation(dups.values()), dups


def profile_plot(profiles, seed):
    fig = new_figure(5.0, 3.0)
    ax = fig.add_subplot()
    for strategy, dups in profiles.items():
        ax.plot(list(dups), list(dups.values()), "o-", label=strategy)
    ax.set_xlabel("output layer (duplicates only)")
    ax.set_ylabel("mean rel change, full-scale modules")
    ax.set_title(f"seed {seed}", fontsize=9)
    ax.legend(fontsize=7)
    return fig


@measure("interleaved_more_balanced")
def interleaved_more_balanced(lab, seeds: list[int], case: str) -> Measured:
    check_case("interleaved_more_balanced", case, CASES)
    maps = {s: lab.layer_map(s) for s in STRATEGIES}
    runs = {s: [lab.upscaled(seed, s) for seed in seeds] for s in STRATEGIES}
    cvs = {s: [dup_cv(r, maps[s]) for r in runs[s]] for s in STRATEGIES}
    effects = [a[0] - b[0] for a, b in zip(cvs["interleaved"], cvs["contiguous"])]
    target_gap = [final(a, "target") - final(b, "target")
                  for a, b in zip(runs["interleaved"], runs["contiguous"])]
    return Measured(effects=effects, seeds=seeds, runs=[r.key for s in STRATEGIES for r in runs[s]],
                    notes={"target loss, interleaved − contiguous": target_gap},
                    plots=lambda: {f"duplicate-layer change profile, seed {seeds[0]}":
                                   profile_plot({s: cvs[s][0][1] for s in STRATEGIES}, seeds[0])})
