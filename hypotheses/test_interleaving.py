"""Interleaving gives a more balanced upscale.

Seed: "[Question] What if we interleave original and duplicate layers? Will that result in a
more balanced, responsive upscale?" (Proposed Upscale Technique: each layer of the range
followed by its two zeroed copies, 0XX0XX0XX, instead of 000XXXXXX.)

Operationalisation: per seed, the same base upscaled two ways over the same range (tiny: layers
3-5, two copies each) and fine-tuned identically. In each run, per duplicate layer, the mean
relative change rel = ‖ΔW‖/‖W₀‖ (step 0 -> end) over the full-scale modules (as in
dups_more_responsive); "balance" is low dispersion across the duplicates: the coefficient of
variation (SD / mean) of those per-layer values, which does not depend on the overall size of
the change. Effect: CV(interleaved) − CV(contiguous), paired by seed. Claimed direction: < 0.
The target loss (interleaved − contiguous, the seed's "responsive") is shown per seed beside it.

Refuted if the CI lies wholly above 0: interleaving spreads the change less evenly.
"""

from __future__ import annotations

import pytest

from harness.claims.function import coefficient_of_variation, final, per_layer_mean_rel
from harness.claims.lab import deltas
from fixtures.params import scales
from harness.plots import new_figure
from harness.claims.patterns import FULL_SCALE

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


@pytest.mark.parametrize("scale", scales())
def test_interleaved_more_balanced(scale, lab, seeds, claim):
    maps = {s: lab.layer_map(s) for s in STRATEGIES}
    runs = {s: [lab.upscaled(seed, s) for seed in seeds] for s in STRATEGIES}
    cvs = {s: [dup_cv(r, maps[s]) for r in runs[s]] for s in STRATEGIES}
    effects = [a[0] - b[0] for a, b in zip(cvs["interleaved"], cvs["contiguous"])]
    target_gap = [final(a, "target") - final(b, "target")
                  for a, b in zip(runs["interleaved"], runs["contiguous"])]
    claim.check(
        id="interleaved_more_balanced",
        expected={"tiny": "refuted"},
        reason={"tiny": "at tiny (seeds 0-7) both layouts spread the change almost evenly (CV 0.006-0.062), "
                        "and interleaving slightly LESS evenly: per-seed CV interleaved − contiguous "
                        "+0.033, -0.000, +0.024, -0.003, +0.011, -0.008, +0.036, +0.030; mean +0.0154, "
                        "95% CI [+0.00057, +0.0293] wholly above 0, p = 0.973. Not a metric artefact: the "
                        "interleaved copies of one source change alike (e.g. seed 0: 0.122/0.121, "
                        "0.118/0.118, 0.111/0.110), so its dispersion is the difference between sources 3-5, "
                        "which the contiguous copies show less. Target loss interleaved − contiguous: mean "
                        "-0.026 (7/8 seeds lower), the 'responsive' half leans the seed's way."},
        statement="Interleaving the duplicates with their originals spreads fine-tuning change more "
                  "evenly over the duplicate layers than the contiguous layout.",
        method="CV across duplicate layers of per-layer mean rel change (full-scale modules, step 0 -> "
               "end), interleaved − contiguous, paired by seed; sign-flip test. Target loss "
               f"interleaved − contiguous, reported: mean {sum(target_gap) / len(target_gap):+.4g}, "
               "per seed " + ", ".join(f"{g:+.3g}" for g in target_gap),
        effects=effects, direction="less", seeds=seeds,
        runs=[r.key for s in STRATEGIES for r in runs[s]],
        plots={f"duplicate-layer change profile, seed {seeds[0]}":
               profile_plot({s: cvs[s][0][1] for s in STRATEGIES}, seeds[0])},
    )
