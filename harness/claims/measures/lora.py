"""LoRA shows the same pattern: duplicates change more than originals.

Seed: "### What if we use LoRA?" (about the pattern of Sample B: duplicates more responsive).

Operationalisation: per seed, the contiguous upscale fine-tuned with LoRA instead of full
fine-tuning (peft, r=8, alpha=16, every linear module, every layer; LR, steps and data order as
the default fine-tune: one extra run kind). The snapshots store the effective weights W + s·B·A,
so ΔW from step 0 to the end is exactly the adapter's s·B·A. Effect: the dups_more_responsive
effect on that ΔW, with its depth control (per duplicate, log mean-rel minus the originals'
profile at its output depth, averaged per duplicated source and over sources), full-scale
modules that LoRA trains (q, k, v, gate, up: the norms do not train under LoRA).
Claimed direction: > 0. One case: contiguous. Placebo: the same metric on a LoRA fine-tune of
the normal model (same adapter, LR, steps and data order), at the duplicates' relative depths.

Beside it, per seed: the target loss LoRA − full upscale (at the shared default LR LoRA learns
the target less) and, where the scale scores the original domain, the retention cost (original
loss rise) LoRA − full upscale; the plot adds the full fine-tune of the normal model (no LoRA
fine-tune of the normal model, the placebo's run).

Refuted when the refutation test (Holm-adjusted) shows the effect below the sesoi — no effect of interest, or the opposite direction: under LoRA the originals change more than the duplicates.
"""

from __future__ import annotations

from harness.claims.function import LORA, final, rise
from harness.claims.lab import deltas
from harness.claims.measured import Measured
from harness.claims.measures import measure
from harness.claims.measures._cases import check_case
from harness.claims.measures.responsiveness import placebo_of
from harness.claims.patterns import depth_controlled_log_ratio
from harness.plots import new_figure

CASES = ("contiguous",)
# The modules LoRA adapts that a duplicate keeps at full scale (the norms stay 0 under LoRA)
LORA_MODULES = ("q_proj", "k_proj", "v_proj", "gate_proj", "up_proj")
PLACEBO = ("the same metric on a LoRA fine-tune of the normal model, its layers at the duplicates' "
           "relative depths treated as duplicates")


def retention_plot(columns, seeds):
    fig = new_figure(5.0, 3.0)
    ax = fig.add_subplot()
    for x, (label, values) in enumerate(columns.items()):
        ax.scatter([x] * len(values), values, s=14)
    for i, s in enumerate(seeds):
        ax.plot(range(len(columns)), [v[i] for v in columns.values()], color="#bbbbbb", lw=0.5)
    ax.set_xticks(range(len(columns)), list(columns), fontsize=7)
    ax.set_ylabel("original loss rise (end − step 0)")
    return fig


@measure("lora_same_pattern")
def lora_same_pattern(lab, seeds: list[int], case: str) -> Measured:
    strategy = check_case("lora_same_pattern", case, CASES)
    lm = lab.layer_map(strategy)
    runs = [lab.upscaled(seed, strategy, mode=LORA) for seed in seeds]
    per_run = [deltas(run, lm) for run in runs]
    effects = [depth_controlled_log_ratio(rows, lm, LORA_MODULES) for rows in per_run]
    placebo = placebo_of(lab, seeds, lm, LORA_MODULES, mode=LORA)
    full = [lab.upscaled(seed, strategy) for seed in seeds]
    notes = {"target loss, LoRA − full upscale": [final(a, "target") - final(b, "target")
                                                  for a, b in zip(runs, full)]}
    has_original = "original" in runs[0].scores()  # retention, where the scale has an original domain
    if has_original:
        notes["original loss rise, LoRA − full upscale"] = [rise(a) - rise(b) for a, b in zip(runs, full)]

    def plots():
        from harness.heatmap import plot_deltas

        out = {f"rel change (ΔW = s·B·A), seed {seeds[0]}":
               plot_deltas(per_run[0], metric="rel", layer_map=lm)}
        if has_original:
            normal = [lab.normal(seed) for seed in seeds]
            out["original loss rise per seed, LoRA vs full"] = retention_plot(
                {"LoRA upscale": [rise(r) for r in runs], "full upscale": [rise(r) for r in full],
                 "full normal": [rise(r) for r in normal]}, seeds)
        return out

    return Measured(effects=effects, seeds=seeds, runs=[r.key for r in runs], notes=notes, plots=plots,
                    placebo=placebo, placebo_metric=PLACEBO if placebo is not None else "")
