"""A few steps reconnect the zeroed duplicates.

Seed: "If we intentionally undercook, will the duplicated layers look *underfilled* or can you
fill it up with a few steps? In other words, can a single/few updates to the model reconnect the
duplicated layers? Are we really repairing the 'neurons' step-by-step, or have they been
significantly rearranged by the first (few?) steps?"

Operationalisation: per seed, the shared 2-epoch run of the contiguous upscale
(`harness.claims.time.LONG`: snapshots at steps 0, 1, 2, 4, 8, 16, 32, then every 16 to 128;
per-step weight and gradient norms of every o_proj, down_proj and up_proj). Two times, each the
step (linearly interpolated between snapshots) at which a curve first reaches half its value at
the end of training:
- reconnection: the ablation cost, held-out target answer loss with every duplicate skipped
  (identity, `probes.skip_layers`) minus the intact loss (0 at step 0: a zeroed duplicate is an
  identity map);
- filling: the mean fill of the duplicates' zeroed o_proj/down_proj.
Effect: log2(reconnection half-time / fill half-time). Claimed direction: < 0: the duplicates
matter to the function before their weights are half grown, i.e. a few updates reconnect them
and the filling comes after. "Few" is measured against the fill, not a fixed step count; the
half-times in steps, and cos(Δ_k, Δ_final) of the dup o_proj/down_proj (has the direction of
the final weights been set in the first steps?) are reported in the plots.

Read with care: at tiny the ablation cost is not monotone (it peaks around step 16, above its
final value, then settles), so "half the final cost" is reached on the way up to that peak.

Refuted if the CI lies wholly above 0: the function follows the fill (step-by-step repair).
"""

from __future__ import annotations

import numpy as np
import pytest

from harness.claims.time import (Long, ablation_cost, direction_cos, dup_zeroed_names, half_time,
                                   log2_ratio, long_run, mean_fill)
from harness.claims.lab import deltas
from fixtures.params import strategy_params
from harness.plots import new_figure

def probe_steps(long: Long) -> tuple[int, ...]:
    """Ablations at the dense early snapshots and the two epoch ends (enough for the half-time)."""
    return tuple(sorted(set(long.early) | {long.epoch, long.steps}))


def curves(run, lm, steps):
    dups = lm.indices("dup")
    cost = [ablation_cost(run, s, dups) for s in steps]
    fill = [mean_fill(deltas(run, lm, 0, s)) if s else 0.0 for s in steps]
    names = dup_zeroed_names(lm)
    base, final = run.state_dict(0), run.state_dict(steps[-1])
    cos = [direction_cos(run.state_dict(s), final, base, names) for s in steps if s]
    return cost, fill, cos


def trajectory_plot(steps, per_run, seeds):
    fig = new_figure(10.0, 3.2)
    ax1, ax2 = fig.subplots(1, 2)
    x = np.array(steps[1:])
    for k, (cost, fill, cos) in enumerate(per_run):
        c = f"C{k % 10}"
        ax1.plot(x, np.array(cost[1:]) / cost[-1], "o-", ms=3, color=c, label=str(seeds[k]))
        ax1.plot(x, np.array(fill[1:]) / fill[-1], "s--", ms=3, color=c, alpha=0.6)
        ax2.plot(x, cos, "o-", ms=3, color=c)
    for ax in (ax1, ax2):
        ax.set_xscale("log", base=2)
        ax.set_xlabel("step")
    ax1.axhline(0.5, color="grey", lw=0.6)
    ax1.set_ylabel("fraction of final value")
    ax1.set_title("ablation cost (solid) vs fill (dashed)", fontsize=9)
    ax1.legend(title="seed", fontsize=6, ncols=2)
    ax2.set_ylabel("cos(W_k, W_final), dup o/down")
    ax2.set_title("direction of the dup o_proj/down_proj vs the final one", fontsize=9)
    return fig


def norms_plot(run, lm, seed):
    """Per-step weight and gradient norms: at step 0 a duplicate's up_proj gets no gradient."""
    track = run.metrics["track"]
    roles = {e.index: e.role for e in lm.layers}
    where = {"o_proj": "self_attn", "down_proj": "mlp", "up_proj": "mlp"}
    fig = new_figure(10.0, 3.2)
    ax1, ax2 = fig.subplots(1, 2)
    for m, style in (("o_proj", "-"), ("down_proj", "--"), ("up_proj", ":")):
        for role, colour in (("dup", "#b03a2e"), ("orig", "#1f5f8b")):
            names = [f"model.layers.{i}.{where[m]}.{m}.weight" for i, r in roles.items() if r == role]
            g = np.mean([track[n]["grad_norm"] for n in names], axis=0)
            w = np.mean([track[n]["weight_norm"] for n in names], axis=0)
            label = f"{role} {m}"
            ax1.plot(np.arange(1, len(g) + 1), g, style, color=colour, lw=1, label=label)
            ax2.plot(np.arange(len(w)), w, style, color=colour, lw=1, label=label)
    ax1.set_yscale("symlog", linthresh=1e-4)
    ax1.set_xscale("log")
    ax1.set_xlabel("step (gradient taken at the weights before it)")
    ax1.set_ylabel("mean gradient norm")
    ax1.set_title(f"per-step gradient norms, seed {seed}", fontsize=9)
    ax2.set_xscale("symlog", linthresh=1)
    ax2.set_xlabel("step")
    ax2.set_ylabel("mean weight norm")
    ax2.set_title("per-step weight norms", fontsize=9)
    ax2.legend(fontsize=6, ncols=2)
    return fig


@pytest.mark.parametrize("scale, strategy", strategy_params(["contiguous"]))
def test_few_steps_reconnect(scale, strategy, lab, seeds, claim):
    lab.needs("target")
    lab.needs_training("dense early snapshots and per-step norms")
    lm = lab.layer_map(strategy)
    steps = probe_steps(Long(lab.epoch_steps))
    runs = [long_run(lab, seed) for seed in seeds]
    per_run = [curves(r, lm, steps) for r in runs]
    halves = [(half_time(steps, cost), half_time(steps, fill)) for cost, fill, _ in per_run]
    effects = [log2_ratio(k_cost, k_fill) for k_cost, k_fill in halves]
    at = 8 if 8 in steps else steps[1]
    summary = "; ".join(f"seed {s}: {a:.1f} vs {b:.1f}, cos@{at} {p[2][steps.index(at) - 1]:.2f}"
                        for s, (a, b), p in zip(seeds, halves, per_run))
    claim.check(
        id="few_steps_reconnect",
        statement="A few updates reconnect the zeroed duplicates: skipping them costs half its "
                  "final target loss before their zeroed weights are half filled.",
        method=f"2 epochs of the contiguous upscale, snapshots {','.join(map(str, steps))}; half-time "
               "(interpolated step) of the ablation cost (target answer loss, all dups skipped, "
               "minus intact) and of the mean dup o/down fill; log2(cost half-time / fill "
               f"half-time); sign-flip test over seeds. Half-times (cost vs fill) and cos(W_{at}, "
               f"W_final) of dup o/down: {summary}",
        effects=effects, direction="less", runs=[r.key for r in runs], seeds=seeds,
        plots={"reconnection vs filling": trajectory_plot(steps, per_run, seeds),
               f"weight and gradient norms, seed {seeds[0]}": norms_plot(runs[0], lm, seeds[0])},
    )
