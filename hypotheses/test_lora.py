"""LoRA shows the same pattern: duplicates change more than originals.

Seed: "### What if we use LoRA?" (about the pattern of Sample B: duplicates more responsive).

Operationalisation: per seed, the contiguous upscale fine-tuned with LoRA instead of full
fine-tuning (peft, r=8, alpha=16, every linear module, every layer; LR, steps and data order as
the default fine-tune: one extra run kind). The snapshots store the effective weights W + s·B·A,
so ΔW from step 0 to the end is exactly the adapter's s·B·A. Effect: the dups_more_responsive
effect on that ΔW, log(mean rel over dup layers / mean rel over orig layers), full-scale modules
(the norms do not train under LoRA: 0 in every layer, which leaves the ratio unchanged).
Claimed direction: > 0. The retention cost (original-domain loss rise) of the LoRA upscale and
of the full fine-tunes of the upscale and of the normal model is shown per seed beside it
(no LoRA fine-tune of the normal model is run, to keep the suite's cost down), with the
target loss LoRA − full upscale, since at the shared default LR LoRA learns the target less.

Refuted if the CI lies wholly below 0: under LoRA the originals change more than the duplicates.
"""

from __future__ import annotations

import pytest

from harness.claims.function import LORA, final, rise
from harness.claims.lab import deltas
from fixtures.params import strategy_params
from harness.heatmap import plot_deltas
from harness.plots import new_figure
from harness.claims.patterns import dup_orig_log_ratio


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


@pytest.mark.parametrize("scale, strategy", strategy_params(["contiguous"]))
def test_lora_same_pattern(scale, strategy, lab, seeds, claim):
    lm = lab.layer_map(strategy)
    runs = [lab.upscaled(seed, strategy, mode=LORA) for seed in seeds]
    per_run = [deltas(run, lm) for run in runs]
    effects = [dup_orig_log_ratio(rows, lm) for rows in per_run]
    full = [lab.upscaled(seed, strategy) for seed in seeds]
    normal = [lab.normal(seed) for seed in seeds]
    learned = [final(a, "target") - final(b, "target") for a, b in zip(runs, full)]
    plots = {f"rel change (ΔW = s·B·A), seed {seeds[0]}": plot_deltas(per_run[0], metric="rel", layer_map=lm)}
    reported = f"target loss LoRA − full upscale, mean {sum(learned) / len(learned):+.4g}"
    if "original" in runs[0].scores():  # retention, where the scale has an original domain
        retention = {"LoRA upscale": [rise(r) for r in runs], "full upscale": [rise(r) for r in full],
                     "full normal": [rise(r) for r in normal]}
        gap = [a - b for a, b in zip(retention["LoRA upscale"], retention["full upscale"])]
        plots["original loss rise per seed, LoRA vs full"] = retention_plot(retention, seeds)
        reported = (f"original loss rise LoRA − full upscale, mean {sum(gap) / len(gap):+.4g}, per seed "
                    + ", ".join(f"{g:+.3g}" for g in gap) + f"; at a {reported}")
    claim.check(
        id="lora_same_pattern",
        statement="Under LoRA fine-tuning of the upscale, duplicated layers change more than original "
                  "layers, as under full fine-tuning.",
        method=f"LoRA (r={LORA.r}, alpha={LORA.alpha:g}, all linear modules) on the {strategy} upscale; "
               "log(mean rel of effective ΔW = s·B·A, dup / orig layers), full-scale modules; sign-flip "
               f"test. Reported: {reported}",
        effects=effects, direction="greater", seeds=seeds, runs=[r.key for r in runs], plots=plots,
    )
