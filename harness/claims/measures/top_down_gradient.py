"""A plain fine-tune changes the top layers first, then descends.

Seed: "Training a normal, non-upscaled model affects the top layers first and slowly descends to
the bottom layers over time." (Top = layers near the output.)

Operationalisation, per training run (seed) of a plain fine-tune (no upscale), with the change
profile = per layer, the mean over all modules of rel = ‖ΔW‖/‖W₀‖, each module scaled to mean 1
over layers (so the profile is a shape; no module outweighs another):

- `descent` (the metric registered first): the profile of the *rate* of change, snapshot to next
  snapshot (tiny: 0-8, 8-16, 16-32, 32-48, 48-64 in epoch 1, then 64-128, epoch 2; at real, whose
  default run keeps no snapshot between its ends, the normal run of the shared long schedule,
  `harness.claims.time.Long`); its depth centre (change-weighted mean
  layer index); effect: centre(last interval) − centre(first interval), in layers. Claimed < 0
  (the change moves down over time). Refuted when the refutation test (Holm-adjusted) shows the effect above -sesoi — no effect of interest, or the opposite direction.
- `descent-slope`: the same centres; effect: least-squares slope of the centre against the
  interval's mid-step, in layers per run length (the last snapshot step). Claimed < 0. It
  replaced `descent` after `descent`'s result had been seen; the registry records that as a
  deviation and keeps it as exploratory. Where the centre first rises and then falls (a hump,
  see the plot), a linear slope summarises a shape that is not a line.
- `rank`: the profile from start to end; effect Spearman(depth, change). Claimed > 0 (top layers
  change most). Refuted when the refutation test (Holm-adjusted) shows the effect below the sesoi — no effect of interest, or the opposite direction.
"""

from __future__ import annotations

import numpy as np

from harness.claims.lab import deltas
from harness.claims.measured import Measured
from harness.claims.measures import measure
from harness.claims.measures._cases import check_case
from harness.claims.patterns import change_profile, depth_centre, plot_profiles, plot_series, slope, spearman

CASES = ("descent", "descent-slope", "rank")


def rank_effect(run) -> float:
    profile = change_profile(deltas(run, None))
    return spearman(np.arange(profile.size), profile)


def centres(run) -> tuple[list[float], list[float]]:
    """(mid-step, depth centre of the rate-of-change profile) per consecutive snapshot pair."""
    pairs = list(zip(run.steps, run.steps[1:]))
    mids = [(a + b) / 2 for a, b in pairs]
    return mids, [depth_centre(change_profile(deltas(run, None, a, b))) for a, b in pairs]


def _with_snapshots(lab, seed: int):
    """The plain fine-tune with snapshots along it: the default run where it keeps them (tiny,
    small), else (real keeps step 0 and the end only, where one interval would give every seed
    an effect of exactly 0) the normal run under the shared long schedule (harness.claims.time)."""
    setting = getattr(lab, "setting", None)  # a manifest's lab has its own snapshots
    if setting is None or len(set(setting.finetune.get("snapshots", ())) - {0}) >= 2:
        return lab.normal(seed)
    from harness.claims.trajectory import long_normal_run

    return long_normal_run(lab, seed)


@measure("top_down_gradient")
def top_down_gradient(lab, seeds: list[int], case: str) -> Measured:
    check_case("top_down_gradient", case, CASES)
    runs = [_with_snapshots(lab, seed) if case != "rank" else lab.normal(seed) for seed in seeds]
    keys = [r.key for r in runs]
    if case == "rank":
        effects = [rank_effect(run) for run in runs]

        def plots():
            from harness.heatmap import plot_deltas

            rows = deltas(runs[0], None)
            return {f"rel change, plain fine-tune, seed {seeds[0]}": plot_deltas(rows, metric="rel"),
                    f"change profile, seed {seeds[0]}":
                    plot_profiles({f"seed {seeds[0]}": change_profile(rows)},
                                  title="change profile (start -> end)")}

        return Measured(effects=effects, seeds=seeds, runs=keys, plots=plots)

    per_run = [centres(run) for run in runs]
    if case == "descent":
        effects = [c[-1] - c[0] for _, c in per_run]
    else:
        effects = [slope(mids, c) * runs[i].steps[-1] for i, (mids, c) in enumerate(per_run)]

    def plots():
        first = runs[0]
        rates = {f"steps {a}-{b}": change_profile(deltas(first, None, a, b))
                 for a, b in zip(first.steps, first.steps[1:])}
        return {"depth centre of change per interval":
                plot_series(per_run[0][0], {f"seed {s}": c for s, (_, c) in zip(seeds, per_run)},
                            title="depth centre of the rate of change",
                            xlabel="mid-step of snapshot interval", ylabel="centre (layer)"),
                f"rate-of-change profiles, seed {seeds[0]}":
                plot_profiles(rates, title="change between consecutive snapshots")}

    return Measured(effects=effects, seeds=seeds, runs=keys, plots=plots)
