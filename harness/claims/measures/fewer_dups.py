"""One duplicated layer fills faster than five.

Seed: "What if we duplicate only ONE layer? What about five layers? Will fewer empty layers
dampen the stabilizing effect? Will the few empty layers get 'filled' quickly? ... Will there be a
greater concentration of weight change in the duplicate layers? Or will it spill out to the
original layers?"

Operationalisation: per seed, two upscales of the same base, fine-tuned alike (the default
fine-tune): `single` (the first layer of the seed's range duplicated once, right after itself;
at 8 layers: layer 3) and a five-layer block duplicated once (`five_block`: ending where the seed's
range ends, or starting at the single's layer when that would leave it out; at 8 layers: 1–5
after layer 5, so it contains layer 3). Fill per duplicate = mean over the duplicates of
‖W_end‖ / ‖W_source‖ of the zeroed o_proj and down_proj. Effect: fill(single) − fill(five),
paired by seed. Claimed direction: > 0. Primary case: single-vs-five; `single-vs-five-sgd` is the
same under SGD (the control arm for AdamW's ~lr-per-element steps, harness.train.optimizer).

Reported beside it, not decided: the same fill early in the run (step 16, before the fill levels
off; see `dups_saturate`), spill into the originals (mean rel change of the original layers, all
modules) and retention (original-domain loss at the end), single − five.

Refuted when the refutation test (Holm-adjusted) shows the effect below the sesoi — no effect of interest, or the opposite direction: each of five duplicates fills more than a lone one.
"""

from __future__ import annotations

import numpy as np

from harness import strategies
from harness.claims.lab import deltas
from harness.claims.settings import seed_layout_range
from harness.claims.measured import Measured
from harness.claims.measures import measure
from harness.claims.measures._cases import check_case
from harness.claims.time import mean_fill, role_of
from harness.plots import new_figure

CASES = ("single-vs-five-sgd", "single-vs-five")
LAYOUTS = ("single", "five")
EARLY = 16  # a default snapshot before the fill levels off


def five_block(depth: int):
    """Five layers duplicated once: ending where the seed's range ends, holding the single's layer."""
    start, end = seed_layout_range(depth)
    first = end - 5 if end - 5 <= start else start
    return strategies.contiguous(max(first, 0), max(first, 0) + 5, num_layers=depth, copies=1)


def orig_rel(rows, lm) -> float:
    roles = role_of(lm)
    return float(np.mean([r.rel for r in rows
                          if r.layer is not None and roles[r.layer] == "orig" and r.rel is not None]))


def paired_plot(panels, seeds):
    fig = new_figure(12.0, 3.0)
    for ax, (title, (a, b)) in zip(fig.subplots(1, len(panels)), panels.items()):
        for k, s in enumerate(seeds):
            ax.plot([0, 1], [a[k], b[k]], "o-", color="#1f5f8b", alpha=0.7)
        ax.set_xticks([0, 1], list(LAYOUTS))
        ax.set_xlim(-0.3, 1.3)
        ax.set_title(title, fontsize=9)
    return fig


@measure("fewer_dups_fill_faster")
def fewer_dups_fill_faster(lab, seeds: list[int], case: str) -> Measured:
    check_case("fewer_dups_fill_faster", case, CASES)
    lab.needs_training("upscales of two layouts")
    overrides = lab.sgd() if case.endswith("-sgd") else {}
    plans = {"single": lab.plan("single"), "five": five_block(lab.setting.depth)}
    maps = {name: lab.map_of(plan) for name, plan in plans.items()}
    runs = {name: [lab.finetuned(seed, plan, **overrides) for seed in seeds] for name, plan in plans.items()}
    rows = {name: [deltas(r, maps[name]) for r in runs[name]] for name in plans}
    fill = {name: [mean_fill(x) for x in rows[name]] for name in plans}
    early = {name: [mean_fill(deltas(r, maps[name], 0, EARLY)) for r in runs[name]] for name in plans}
    spill = {name: [orig_rel(x, maps[name]) for x in rows[name]] for name in plans}
    kept = {name: [r.scores().get("original", {}).get("loss", float("nan")) for r in runs[name]]
            for name in plans}
    effects = [a - b for a, b in zip(fill["single"], fill["five"])]

    def minus(d):
        return [a - b for a, b in zip(d["single"], d["five"])]

    return Measured(
        effects=effects, seeds=seeds, runs=[r.key for name in plans for r in runs[name]],
        notes={f"fill per duplicate at step {EARLY}, single − five": minus(early),
               "spill (rel change of originals), single − five": minus(spill),
               "original-domain loss at the end, single − five": minus(kept)},
        plots=lambda: {"fill, spill and retention: single vs five": paired_plot({
            "fill per duplicate (end)": (fill["single"], fill["five"]),
            f"fill per duplicate (step {EARLY})": (early["single"], early["five"]),
            "spill: rel change of originals": (spill["single"], spill["five"]),
            "retention: original-domain loss": (kept["single"], kept["five"])}, seeds)})
