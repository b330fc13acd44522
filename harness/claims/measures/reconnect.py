"""A few steps reconnect the zeroed duplicates.

Seed: "If we intentionally undercook, will the duplicated layers look *underfilled* or can you
fill it up with a few steps? In other words, can a single/few updates to the model reconnect the
duplicated layers? Are we really repairing the 'neurons' step-by-step, or have they been
significantly rearranged by the first (few?) steps?"

Operationalisation: per seed, the shared 2-epoch run of the contiguous upscale
(`harness.claims.trajectory.long_run`: snapshots at steps 0, 1, 2, 4, 8, ... up to an epoch, then every
quarter epoch; per-step weight and gradient norms of every o_proj, down_proj and up_proj). Two
times, each the step (linearly interpolated between snapshots) at which a curve first reaches
half its value at the end of training:
- reconnection: the ablation cost, held-out target answer loss with every duplicate skipped
  (identity, `probes.skip_layers`) minus the intact loss (0 at step 0: a zeroed duplicate is an
  identity map);
- filling: the mean fill of the duplicates' zeroed o_proj/down_proj.
Effect (primary `contiguous`): log2(reconnection half-time / fill half-time). Claimed direction:
< 0: the duplicates matter to the function before their weights are half grown, i.e. a few
updates reconnect them and the filling comes after. "Few" is measured against the fill here. A
run whose final ablation cost is <= 0 (the duplicates never carry function at the end) counts as
reconnecting at its last step (the registry's rule, recorded as a deviation: it was written after
seed 0's curve was seen), which pushes the effect towards refutation; such a final cost never
enters a ratio. The censored seeds are counted beside the effect, and the effect with them left
out is shown too (the rule's alternative).
Secondary `within-few`: "few" fixed in advance as the first 10% of the fine-tune: 0.1 −
reconnection half-time / the fine-tune's steps, claimed > 0. The half-times in steps, and
cos(Δ_k, Δ_final) of the dup o_proj/down_proj at step 8 (has the direction of the final weights
been set in the first steps?) are reported beside it.

Read with care: where the ablation cost is not monotone (at tiny it peaks early, above its final
value, then settles), "half the final cost" is reached on the way up to that peak.

Refuted when the refutation test (Holm-adjusted) shows the effect above -sesoi — no effect of interest, or the opposite direction: the function follows the fill (step-by-step repair).
"""

from __future__ import annotations

import numpy as np

from harness.claims.measured import Measured
from harness.claims.measures import measure
from harness.claims.measures._cases import check_case
from harness.claims.time import Long, half_time, log2_ratio, weight_name
from harness.claims.trajectory import curves, long_run, probe_steps
from harness.plots import new_figure

CASES = ("contiguous", "within-few")
FEW = 0.1  # "a few steps": the first tenth of the fine-tune (registry, within-few)
COS_AT = 8  # the snapshot whose direction against the final one is reported (else the first after 0)


def trajectory_plot(steps, per_run, seeds):
    fig = new_figure(10.0, 3.2)
    ax1, ax2 = fig.subplots(1, 2)
    x = np.array(steps[1:])
    for k, (cost, fill, cos) in enumerate(per_run):
        c = f"C{k % 10}"
        if cost[-1] > 0:  # a final cost <= 0 has no "fraction of the final value" (never a ratio)
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


def norms_plot(run, lm, seed, model_type: str):
    """Per-step weight and gradient norms: at step 0 a duplicate's up_proj gets no gradient."""
    track = run.metrics["track"]
    roles = {e.index: e.role for e in lm.layers}
    fig = new_figure(10.0, 3.2)
    ax1, ax2 = fig.subplots(1, 2)
    for m, style in (("o_proj", "-"), ("down_proj", "--"), ("up_proj", ":")):
        for role, colour in (("dup", "#b03a2e"), ("orig", "#1f5f8b")):
            names = [weight_name(model_type, i, m) for i, r in roles.items() if r == role]
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


def _half_time(steps, values, seed: int, curve: str) -> float:
    """half_time, with the seed and the curve named when it is undefined."""
    try:
        return half_time(steps, values)
    except ValueError as e:
        raise ValueError(f"few_steps_reconnect, seed {seed}, {curve}: {e}") from None


def reconnection_time(steps, cost, seed: int) -> float:
    """The ablation cost's half-time; a run whose final cost is <= 0 (skipping the duplicates
    costs nothing at the end: they never carry function) reconnects at its last step."""
    if not cost[-1] > 0:
        return float(steps[-1])
    return _half_time(steps, cost, seed, "ablation cost")


@measure("few_steps_reconnect")
def few_steps_reconnect(lab, seeds: list[int], case: str) -> Measured:
    check_case("few_steps_reconnect", case, CASES)
    lab.needs("target")
    lab.needs_training("dense early snapshots and per-step norms")
    lm = lab.layer_map("contiguous")
    model_type = lab.setting.model_type
    long = Long(lab.epoch_steps)
    steps = probe_steps(long)
    runs = [long_run(lab, seed) for seed in seeds]
    per_run = [curves(r, lm, steps, model_type) for r in runs]
    k_cost = [reconnection_time(steps, cost, seed) for seed, (cost, _, _) in zip(seeds, per_run)]
    notes = {"half-time of the ablation cost (steps)": k_cost,
             "final ablation cost > 0 (1) or counted as reconnecting at the last step (0)":
             [float(cost[-1] > 0) for cost, _, _ in per_run]}
    carried = [cost[-1] > 0 for cost, _, _ in per_run]
    notes["seeds censored: duplicates carry no function at the end (count, every seed)"] = (
        [float(sum(not c for c in carried))] * len(seeds))
    if case == "contiguous":
        k_fill = [_half_time(steps, fill, seed, "fill") for seed, (_, fill, _) in zip(seeds, per_run)]
        effects = [log2_ratio(a, b) for a, b in zip(k_cost, k_fill)]
        notes["half-time of the fill (steps)"] = k_fill
        # the alternative rule of the registry's deviation: censored runs left out (nan here)
        notes["effect with censored runs left out (nan: left out)"] = [
            e if c else float("nan") for e, c in zip(effects, carried)]
    else:
        effects = [FEW - k / long.steps for k in k_cost]
    at = COS_AT if COS_AT in steps else steps[1]
    notes[f"cos(ΔW step {at}, ΔW final), dup o/down"] = [p[2][steps.index(at) - 1] for p in per_run]
    return Measured(
        effects=effects, seeds=seeds, runs=[r.key for r in runs], notes=notes,
        plots=lambda: {"reconnection vs filling": trajectory_plot(steps, per_run, seeds),
                       f"weight and gradient norms, seed {seeds[0]}":
                       norms_plot(runs[0], lm, seeds[0], model_type)})
