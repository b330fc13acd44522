"""Duplicates change as fast in the second epoch as in the first.

Seed: "A 600MB dataset was nowhere near in stabilizing the empty/duplicated layers. (Pertubed rate
of change remained the same for epoch 1 & 2)"; "There are no indications that the duplicate
layers are 'slowing down'" (Sample C, epoch 2 vs epoch 1, read as the rate of change).

Operationalisation: per seed, two epochs (one cosine schedule over both) of the seed's contiguous
upscale (`harness.claims.trajectory.long_run`, shared with `dups_saturate` and `few_steps_reconnect`).
For every (layer, module): rate ratio = ‖W[end 2] − W[end 1]‖ / ‖W[end 1] − W₀‖, the change in
epoch 2 over the change in epoch 1 (epochs are equally long, so a ratio of rates). Mean ratio
over the duplicates' units and over the originals' units (all nine modules; a duplicate's zeroed
o_proj/down_proj included). The schedule slows every layer in epoch 2, so the seed's claim is
relative: effect = ratio(dup) − ratio(orig). Claimed direction: > 0. One case: contiguous.

Within-run form: per output layer its mean rate ratio, dup vs orig, copies of one source layer
averaged into one unit (`harness.claims.units`).

Placebo (shown, not checked: for a non-inferiority claim a placebo that also holds is expected):
the same contrast on the normal model's two-epoch run at the duplicates' relative depths.

Refuted when the refutation test (Holm-adjusted) shows the effect below the sesoi — no effect of interest, or the opposite direction: duplicates slow down more than the originals (they settle).
"""

from __future__ import annotations

from harness.claims.lab import deltas
from harness.claims.measured import Measured, Within
from harness.claims.measures import measure
from harness.claims.measures._cases import check_case
from harness.claims.patterns import placebo_dups
from harness.claims.time import layer_rate_ratios, rate_ratios
from harness.claims.trajectory import long_normal_run, long_run
from harness.layermap import LayerEntry, LayerMap
from harness.claims.units import SOURCE_LAYER_BY_ROLE, role_units
from harness.plots import new_figure

CASES = ("contiguous",)
PLACEBO = ("the same contrast on the normal model's two-epoch run (same schedule and snapshots), its "
           "layers at the duplicates' relative depths treated as duplicates")


def pseudo_map(lm: LayerMap, depth: int) -> LayerMap:
    """A `depth`-layer model with no duplicates whose layers at the upscale's duplicate depths
    play the duplicates (the placebo's roles)."""
    dups = set(placebo_dups(lm, depth))
    return LayerMap(depth, tuple(LayerEntry(i, i, "dup" if i in dups else "orig", 0, 0.0)
                                 for i in range(depth)))


def placebo(lab, seeds, lm) -> tuple[float, ...] | None:
    from harness.claims import NotApplicable

    try:
        runs = [long_normal_run(lab, seed) for seed in seeds]
    except NotApplicable:
        return None
    fake = pseudo_map(lm, lab.setting.depth)
    out = []
    for r in runs:
        e1, e2 = r.epoch_end(1), r.epoch_end(2)
        ratio = rate_ratios(deltas(r, None, 0, e1), deltas(r, None, e1, e2), fake)
        out.append(ratio["dup"] - ratio["orig"])
    return tuple(out)


def ratio_plot(ratios, seeds):
    fig = new_figure(5.0, 3.0)
    ax = fig.add_subplot()
    for k, (dup, orig) in enumerate(zip(ratios["dup"], ratios["orig"])):
        ax.plot([0, 1], [orig, dup], "o-", color="#1f5f8b", alpha=0.7)
        ax.annotate(str(seeds[k]), (1, dup), xytext=(4, 0), textcoords="offset points", fontsize=7)
    ax.set_xticks([0, 1], ["originals", "duplicates"])
    ax.set_xlim(-0.3, 1.3)
    ax.set_ylabel("‖Δ epoch 2‖ / ‖Δ epoch 1‖ (mean over units)")
    ax.set_title("rate ratio per seed (1 = as fast in epoch 2)", fontsize=9)
    return fig


@measure("dup_rate_not_slowing")
def dup_rate_not_slowing(lab, seeds: list[int], case: str) -> Measured:
    strategy = check_case("dup_rate_not_slowing", case, CASES)
    lm = lab.layer_map(strategy)
    runs = [long_run(lab, seed) for seed in seeds]
    ends = [(r.epoch_end(1), r.epoch_end(2)) for r in runs]
    rows = [(deltas(r, lm, 0, e1), deltas(r, lm, e1, e2)) for r, (e1, e2) in zip(runs, ends)]
    per_run = [rate_ratios(a, b, lm) for a, b in rows]
    effects = [p["dup"] - p["orig"] for p in per_run]
    ratios = {role: [p[role] for p in per_run] for role in ("dup", "orig")}

    def plots():
        from harness.heatmap import plot_deltas

        return {"rate ratio, originals vs duplicates": ratio_plot(ratios, seeds),
                f"epoch-2 change (l2, step {ends[0][0]} -> {ends[0][1]}), seed {seeds[0]}":
                plot_deltas(deltas(runs[0], lm, *ends[0]), metric="l2", layer_map=lm)}

    control = placebo(lab, seeds, lm)
    return Measured(effects=effects, seeds=seeds, runs=[r.key for r in runs],
                    within=Within(role_units(layer_rate_ratios(*rows[0], lm), lm), unit=SOURCE_LAYER_BY_ROLE),
                    notes={"rate ratio, duplicates": ratios["dup"], "rate ratio, originals": ratios["orig"]},
                    plots=plots, placebo=control, placebo_metric=PLACEBO if control is not None else "")
