"""A duplicate's o_proj is less sensitive to training than its down_proj.

Seed: "The duplicated layers in `o_proj` are less sensitive for some reason." (Impressions, on
the diff heatmaps of the 39B upscale; in the duplicates o_proj and down_proj start at zero.)

Operationalisation: per training run (seed), fine-tune the upscale and, in the duplicate layers,
take each zeroed module's fill = ‖W‖ / ‖W_src‖ at the end (its norm relative to the layer it was
cloned from; from zero, everything it holds is change). Effect: log(mean fill of o_proj / mean
fill of down_proj) over the duplicates, i.e. how far o_proj has refilled compared with the other
zeroed module. Claimed direction: < 0. Cases: the upscale strategy; `contiguous-sgd` is the
control arm under SGD (harness.train.optimizer), where a weight moves with its gradient's size
instead of AdamW's ~lr per element.

Within-run form: per duplicate layer log(fill o_proj / fill down_proj), one sample, copies of one
source layer averaged into one unit (`harness.claims.units`).

Refuted when the refutation test (Holm-adjusted) shows the effect above -sesoi — no effect of interest, or the opposite direction: o_proj refills faster than down_proj. A weaker reading
(o_proj's dup/orig contrast in ‖W‖ against down_proj's) was checked as a flaw check; it does not
change the reading of this one.
"""

from __future__ import annotations

from harness.claims.lab import deltas
from harness.claims.measured import Measured, Within
from harness.claims.measures import measure
from harness.claims.measures._cases import check_case
from harness.claims.patterns import dup_fill_log_ratio, dup_fill_log_ratios
from harness.claims.units import SOURCE_LAYER, dup_units

CASES = ("contiguous", "interleaved", "contiguous-sgd")


@measure("o_proj_less_sensitive")
def o_proj_less_sensitive(lab, seeds: list[int], case: str) -> Measured:
    strategy, _, arm = check_case("o_proj_less_sensitive", case, CASES).partition("-")
    overrides = lab.sgd() if arm == "sgd" else {}
    lm = lab.layer_map(strategy)
    runs = [lab.upscaled(seed, strategy, **overrides) for seed in seeds]
    per_run = [deltas(run, lm) for run in runs]
    effects = [dup_fill_log_ratio(rows, lm, "o_proj", "down_proj") for rows in per_run]

    def plots():
        from harness.heatmap import plot_deltas

        return {f"fill of the zeroed modules, seed {seeds[0]} ({strategy})":
                plot_deltas(per_run[0], metric="fill", layer_map=lm)}

    return Measured(effects=effects, seeds=seeds, runs=[r.key for r in runs],
                    within=Within((dup_units(dup_fill_log_ratios(per_run[0], lm), lm),),
                                  unit=f"duplicated {SOURCE_LAYER}"),
                    plots=plots)
