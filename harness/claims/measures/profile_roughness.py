"""The upscale breaks the smooth depth profile of change.

Seed: "The upscale clearly has an effect on training. Control A & B show a smooth gradient
unlike Control C & Sample A, B, C where the duplicated layers perturb the heatmap."

Operationalisation: per seed, the same base fine-tuned as is ("normal") and after the upscale,
sharing the seed (data order). Each run's change profile: per layer, the mean over the modules a
duplicate keeps (q, k, v, gate, up, both norms; the same set in both runs) of rel = ‖ΔW‖/‖W₀‖,
each module scaled to mean 1 over layers. Roughness: mean |second difference| of the profile
over its mean (0 for any straight line). Effect: roughness(upscale) − roughness(normal), paired
by seed. Claimed direction: > 0. Cases: the upscale strategy.

One-run form (a manifest, with control pairs): per interior layer of each profile, its |second
difference| (the profile's mean is 1, so their mean is the roughness); the upscale's layers vs the
controls' layers pooled, two samples, over the kept modules that every model has.

Refuted when the refutation test (Holm-adjusted) shows the effect below the sesoi — no effect of interest, or the opposite direction. Caveat: the upscale is deeper (14 vs 8 layers for an 8-layer base);
a smooth curve sampled at more layers has smaller second differences, so the comparison leans
*against* the claim; a jump (a perturbation) does not shrink with depth. The interleaved layout
zig-zags by construction where duplicates change more than originals (`dups_more_responsive`).
"""

from __future__ import annotations

import numpy as np

from harness.claims.lab import deltas
from harness.claims.measured import Measured, Within
from harness.claims.measures import measure
from harness.claims.measures._cases import check_case
from harness.claims.patterns import FULL_SCALE, change_profile, plot_profiles, roughness

CASES = ("contiguous", "interleaved")
PROFILE_LAYER = "interior layer of a change profile (|second difference|), the upscale's vs the controls' pooled"


def one_run(lab, strategy: str) -> Measured:
    """A manifest: the upscale's profile against its control pairs' profiles, layers as units."""
    from harness.measure.rows import pivot

    lm = lab.layer_map(strategy)
    run = lab.upscaled(0, strategy)
    controls = lab.controls("the card read the upscale's heatmap against ordinary fine-tunes")
    up_rows = deltas(run, lm)
    rows = {c.name: deltas(c, None) for c in controls}
    modules = [m for m in FULL_SCALE if all(m in pivot(r, "rel").modules for r in [up_rows, *rows.values()])]
    if not modules:
        raise ValueError(f"the upscale and its controls share none of the kept modules {list(FULL_SCALE)}")
    up = change_profile(up_rows, modules)
    profiles = {name: change_profile(r, modules) for name, r in rows.items()}
    a = np.abs(np.diff(up, n=2))
    b = np.concatenate([np.abs(np.diff(p, n=2)) for p in profiles.values()])

    def plots():
        return {"change profiles, upscale and controls":
                plot_profiles({f"upscale ({len(up)} layers)": up,
                               **{f"{n} ({len(p)} layers)": p for n, p in profiles.items()}},
                              boundaries=lm.slice_starts(), title="change profile: upscale vs controls")}

    return Measured(effects=[float(a.mean() - b.mean())],
                    seeds=[0], runs=[run.key] + [c.key for c in controls],
                    within=Within((tuple(a), tuple(b)), unit=PROFILE_LAYER),
                    notes={"roughness, upscale": [roughness(up)],
                           **{f"roughness, {n}": [roughness(p)] for n, p in profiles.items()}},
                    plots=plots)


@measure("upscale_perturbs_profile")
def upscale_perturbs_profile(lab, seeds: list[int], case: str) -> Measured:
    strategy = check_case("upscale_perturbs_profile", case, CASES)
    if lab.single_run:
        return one_run(lab, strategy)
    lm = lab.layer_map(strategy)
    normal = [lab.normal(seed) for seed in seeds]
    upscaled = [lab.upscaled(seed, strategy) for seed in seeds]
    normal_profiles = [change_profile(deltas(r, None), FULL_SCALE) for r in normal]
    up_rows = [deltas(r, lm) for r in upscaled]
    up_profiles = [change_profile(rows, FULL_SCALE) for rows in up_rows]
    effects = [roughness(u) - roughness(n) for u, n in zip(up_profiles, normal_profiles)]

    def plots():
        from harness.heatmap import plot_deltas

        return {f"rel change, seed {seeds[0]} ({strategy})":
                plot_deltas(up_rows[0], metric="rel", layer_map=lm),
                f"change profiles, seed {seeds[0]}":
                plot_profiles({f"normal ({len(normal_profiles[0])} layers)": normal_profiles[0],
                               f"{strategy} ({len(up_profiles[0])} layers)": up_profiles[0]},
                              boundaries=lm.slice_starts(),
                              title="change profile: plain vs upscaled fine-tune")}

    return Measured(effects=effects, seeds=seeds, runs=[r.key for r in normal + upscaled],
                    notes={"roughness, upscale": [roughness(u) for u in up_profiles],
                           "roughness, normal": [roughness(n) for n in normal_profiles]},
                    plots=plots)
