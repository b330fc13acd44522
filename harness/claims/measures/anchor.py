"""The original layer before a duplicated slice holds the slice together.

Seed: "[Question] Does this mean that the **original layer** before the slice is the one
holding that whole duplicated slice together?"

Operationalisation: the contiguous upscale (the seed's layout; at 8 layers: orig 0-5, two
zeroed copies of 3-5 at outputs 6-11, orig 12-13), fine-tuned (default run). The anchor is the
orig layer right before the first duplicated slice, `LayerMap.anchor_of(first dup)` (at 8
layers: output 5). The matched original is the orig layer just before it (at 8 layers: output 4): the orig
layer at the nearest depth that is not the anchor, and, like the anchor, a source of the
duplicated slices (so both are "copied" layers; only the anchor's position next to the slice
differs). Fixed before looking at data.

Per seed: the rise in held-out *target*-domain loss when the anchor is skipped (made an identity
map) − the rise when the matched original is skipped. Target, not original: the duplicates had
no function before the fine-tune (o_proj/down_proj = 0) and acquire one only from target-domain
training, so whatever "holding the slice together" means, it shows where the slice does its
work. Claimed direction: > 0. One case: contiguous.

Refuted when the refutation test (Holm-adjusted) shows the effect below the sesoi — no effect of interest, or the opposite direction: skipping the matched original costs more than the anchor.
Caveat for reading a "supported": the contrast also contains how much the anchor's depth vs the
matched layer's matter in any fine-tuned model; the plot shows the same rises in the normal
fine-tune as a reference. Flaw check: the probe's unablated loss equals the run's recorded target
loss.
"""

from __future__ import annotations

from harness.claims.function import skip_rises
from harness.claims.measured import Measured
from harness.claims.measures import measure
from harness.claims.measures._cases import check_case
from harness.plots import new_figure

CASES = ("contiguous",)


def rises_plot(up_rises, normal_rises, lm, anchor, seed):
    """Per skipped layer, at upscale output positions (a normal layer sits at its orig copy)."""
    at = {e.source: e.index for e in lm.layers if e.role == "orig"}
    fig = new_figure(5.0, 3.0)
    ax = fig.add_subplot()
    ax.bar([x - 0.2 for x in range(len(up_rises))], up_rises, width=0.4, label="upscale")
    ax.bar([at[s] + 0.2 for s in range(len(normal_rises))], normal_rises, width=0.4,
           label="normal (at its orig copy)")
    ax.axvline(anchor, color="#b03a2e", lw=0.8, ls="--", label=f"anchor {anchor}")
    ax.set_xlabel("skipped layer (upscale output index)")
    ax.set_ylabel("target loss rise")
    ax.set_title(f"seed {seed}", fontsize=9)
    ax.legend(fontsize=7)
    return fig


def anchor_and_matched(lm) -> tuple[int, int]:
    """(anchor, matched original) output indices; the matched one must be a copied orig layer."""
    anchor = lm.anchor_of(lm.indices("dup")[0])
    matched = anchor - 1  # the orig layer just before the anchor
    sources = {lm.source_of(i) for i in lm.indices("dup")}
    if not (lm.layers[matched].role == "orig" and lm.source_of(matched) in sources):
        raise ValueError(f"output {matched} (before the anchor {anchor}) is not an orig layer that "
                         "the duplicated slices also copy; no matched original for this layout")
    return anchor, matched


@measure("anchor_holds_slice")
def anchor_holds_slice(lab, seeds: list[int], case: str) -> Measured:
    strategy = check_case("anchor_holds_slice", case, CASES)
    lab.needs("target")
    lm = lab.layer_map(strategy)
    anchor, matched = anchor_and_matched(lm)
    runs = [lab.upscaled(seed, strategy) for seed in seeds]
    effects, anchor_rises, matched_rises = [], [], []
    for run in runs:
        a, m = skip_rises(run, [[anchor], [matched]])
        anchor_rises.append(a)
        matched_rises.append(m)
        effects.append(a - m)

    def plots():
        # reference for the caveat: per-layer rises in the upscale and the normal fine-tune, first seed
        normal = lab.normal(seeds[0])
        up_rises = skip_rises(runs[0], [[i] for i in range(lm.num_layers)])
        normal_rises = skip_rises(normal, [[i] for i in range(lm.source_layers)])
        return {f"target loss rise per skipped layer, seed {seeds[0]}":
                rises_plot(up_rises, normal_rises, lm, anchor, seeds[0])}

    return Measured(effects=effects, seeds=seeds, runs=[r.key for r in runs],
                    notes={f"target loss rise, anchor (output {anchor}) skipped": anchor_rises,
                           f"target loss rise, matched (output {matched}) skipped": matched_rises},
                    plots=plots)
