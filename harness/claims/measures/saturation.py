"""Duplicates approach a ceiling.

Seed: "There's a 'ceiling value' for the duplicated layers in these slices"; "Even when
Tunguska's slices of duplicated layers are nearly saturated, the resulting model remains
coherent"; "Saturating these duplicated layers MIGHT be a good goal to pursue."

Operationalisation: per seed, the shared 2-epoch run of the contiguous upscale
(`harness.claims.trajectory.long_run`), snapshots every quarter epoch. y(t) = mean fill
(‖W_t‖ / ‖W_source‖) of the duplicates' zeroed o_proj and down_proj. Time t is the cumulative
learning rate Σ lr up to the snapshot, not the step: the cosine schedule alone would make any
steadily growing weight look saturating over steps. `harness.stats.saturation(t, y)` fits a
saturating and a linear curve; growth ratio = late slope / early slope (least squares over the
last and first halves of the points). (A log ratio would be undefined when the late slope is
≤ 0, the strongest saturation.)

Control: under AdamW any weight's growth per unit of LR slows as the loss plateaus, so a slowing
fill alone is no ceiling of the duplicates' own. The normal fine-tune of the same base runs the
same 2 epochs, schedule and snapshots (`trajectory.long_normal_run`); its curve is the mean relative
change ‖W_t − W_0‖ / ‖W_0‖ of o_proj/down_proj over all layers, over its own Σ lr. Primary effect
(contiguous): growth ratio of the dups' fill − growth ratio of the normal layers' change.
Claimed direction: < 0 (the duplicates slow more than ordinary layers under the same schedule).
Secondary `contiguous-uncontrolled`: the dups' growth ratio − 1 alone; `contiguous-sgd`: the
primary effect with both arms under SGD (harness.train.optimizer), where a weight's growth follows
its gradient's size rather than AdamW's ~lr per element. The AIC comparison
(saturating − linear, > 0 favours the ceiling), the normal curve's growth ratio and the
step-time growth ratio are reported beside it.

One-run form (a manifest with 3 snapshots or more): per duplicated source layer, the growth
ratio over the manifest's steps of its copies' mean fill of o_proj/down_proj minus that of its own
original's mean relative change of o_proj/down_proj (the same run's schedule is the control: the
manifest gives no learning-rate schedule), one sample over the duplicated sources; for
`contiguous-uncontrolled`, the copies' growth ratio − 1. The fill meter (`harness.claims.fill`)
is shown beside it.

Refuted when the refutation test (Holm-adjusted) shows the effect above -sesoi — no effect of interest, or the opposite direction: the duplicates' fill slows less per unit of learning rate
than ordinary layers' change does.
"""

from __future__ import annotations

import math

from harness.claims.lab import deltas
from harness.claims.measured import Measured, Within
from harness.claims.measures import measure
from harness.claims.measures._cases import check_case
from harness.claims.patterns import layer_means
from harness.claims.time import ZEROED, Long, cumulative_lr, mean_fill, mean_rel
from harness.claims.trajectory import long_normal_run, long_run
from harness.claims.units import DUP_SOURCE_PAIRED, by_source
from harness.plots import new_figure
from harness.stats import saturation

CASES = ("contiguous", "contiguous-uncontrolled", "contiguous-sgd")


def fill_curve(run, lm, grid) -> list[float]:
    return [mean_fill(deltas(run, lm, 0, s)) if s else 0.0 for s in grid]


def change_curve(run, grid) -> list[float]:
    """The normal run's mean relative change of o_proj/down_proj (all layers) at each grid step."""
    return [mean_rel(deltas(run, None, 0, s)) if s else 0.0 for s in grid]


def trajectory_plot(grid, curves, times, fits, seeds):
    fig = new_figure(9.0, 3.2)
    ax1, ax2 = fig.subplots(1, 2)
    for seed, y, t, fit in zip(seeds, curves, times, fits):
        line, = ax1.plot(grid, y, "o-", ms=3, alpha=0.8, label=str(seed))
        ax2.plot(t, y, "o", ms=3, color=line.get_color())
        if math.isfinite(fit.tau):
            tt = [t[0] + (t[-1] - t[0]) * i / 100 for i in range(101)]
            ax2.plot(tt, [fit.start + (fit.ceiling - fit.start) * (1 - math.exp(-(x - t[0]) / fit.tau))
                          for x in tt], "-", lw=0.8, color=line.get_color())
    ax1.set_xlabel("step")
    ax1.set_ylabel("mean fill, dup o_proj + down_proj")
    ax1.axvline(grid[len(grid) // 2], color="grey", lw=0.6, ls=":")
    ax1.set_title("fill over steps (epoch end dotted)", fontsize=9)
    ax2.set_xlabel("cumulative learning rate Σ lr")
    ax2.set_title("fill over Σ lr, with the saturating fit", fontsize=9)
    ax1.legend(title="seed", fontsize=6, ncols=2)
    return fig


def fit_table(fits, step_fits, seeds):
    fig = new_figure(6.0, 1.0 + 0.22 * len(seeds))
    ax = fig.add_subplot()
    ax.axis("off")
    rows = [[str(s), f"{f.growth_ratio:.3f}", f"{f.delta_aic:+.1f}", f"{g.growth_ratio:.3f}",
             f"{g.delta_aic:+.1f}"] for s, f, g in zip(seeds, fits, step_fits)]
    ax.table(cellText=rows, colLabels=["seed", "growth ratio (Σlr)", "ΔAIC (Σlr)",
                                       "growth ratio (steps)", "ΔAIC (steps)"], loc="center")
    ax.set_title("saturating vs linear fit (ΔAIC > 0: saturating better)", fontsize=9)
    return fig


def one_run(lab, case: str) -> Measured:
    """A manifest: growth ratios over its snapshots, per duplicated source layer."""
    from harness.claims import fill

    if case == "contiguous-sgd":
        lab.needs_training("the SGD control arm")
    lab.snapshots_at_least(3, "a growth ratio compares the slopes of the first and the last half "
                              "of the points (the upscaled model at step 0, then each snapshot)")
    lm = lab.layer_map("contiguous")
    run = lab.upscaled(0, "contiguous")
    steps = run.steps
    rows = [deltas(run, lm, 0, s) for s in steps[1:]]
    dup_fill = [by_source(layer_means(r, ZEROED, "fill"), lm, "dup") for r in rows]
    orig_rel = [layer_means(r, ZEROED, "rel") for r in rows]

    def ratio(series: list[float]) -> float:
        return saturation(steps, [0.0, *series]).growth_ratio

    dup_ratio = {s: ratio([f[s] for f in dup_fill]) for s in dup_fill[0]}
    if case == "contiguous-uncontrolled":
        units = tuple(r - 1 for r in dup_ratio.values())
        within = Within((units,), unit="duplicated source layer (its copies averaged)")
        notes = {}
    else:
        orig = [by_source(o, lm, "orig") for o in orig_rel]  # per step: source -> its original's change
        orig_ratio = {s: ratio([o[s] for o in orig]) for s in dup_ratio}
        units = tuple(dup_ratio[s] - orig_ratio[s] for s in dup_ratio)
        within = Within((units,), unit=DUP_SOURCE_PAIRED)
        notes = {"growth ratio, dup fill, per source": list(dup_ratio.values()),
                 "growth ratio, own original's o/down change, per source": list(orig_ratio.values())}
    meter = fill.fill_meter(lambda s: deltas(run, lm, 0, s), steps[1:], lm)
    return Measured(effects=[sum(units) / len(units)], seeds=[0], runs=[run.key], within=within,
                    notes=notes, plots=lambda: {"fill meter": fill.plot(meter)})


@measure("dups_saturate", first=("contiguous", "contiguous-sgd"))
def dups_saturate(lab, seeds: list[int], case: str) -> Measured:
    check_case("dups_saturate", case, CASES)
    if lab.single_run:
        return one_run(lab, case)
    lab.needs_training("its learning-rate schedule and snapshots every quarter epoch")
    lm = lab.layer_map("contiguous")
    grid = Long(lab.epoch_steps).grid
    overrides = lab.sgd() if case == "contiguous-sgd" else {}
    runs = [long_run(lab, seed, **overrides) for seed in seeds]
    curves = [fill_curve(r, lm, grid) for r in runs]
    times = [cumulative_lr(r.metrics, grid) for r in runs]
    fits = [saturation(t, y) for t, y in zip(times, curves)]
    step_fits = [saturation(grid, y) for y in curves]
    notes = {"ΔAIC saturating − linear (Σ lr)": [f.delta_aic for f in fits],
             "growth ratio − 1 over steps": [g.growth_ratio - 1 for g in step_fits]}
    used = list(runs)
    if case != "contiguous-uncontrolled":
        normal = [long_normal_run(lab, seed, **overrides) for seed in seeds]
        used += normal
        normal_fits = [saturation(cumulative_lr(r.metrics, grid), change_curve(r, grid)) for r in normal]
        effects = [f.growth_ratio - g.growth_ratio for f, g in zip(fits, normal_fits)]
        notes = {"growth ratio, dup fill (Σ lr)": [f.growth_ratio for f in fits],
                 "growth ratio, normal o/down change (Σ lr)": [g.growth_ratio for g in normal_fits], **notes}
    else:
        effects = [f.growth_ratio - 1 for f in fits]
    return Measured(effects=effects, seeds=seeds, runs=[r.key for r in used], notes=notes,
                    plots=lambda: {"fill trajectories": trajectory_plot(grid, curves, times, fits, seeds),
                                   "fits per seed": fit_table(fits, step_fits, seeds)})
