"""A duplicated slice is more connected within itself than to the rest of the model.

Seed: "These slice of layers are more connected to each other than to the model's entirety."
(A takeaway from each slice having its own gradient.)

Operationalisation: per training run (seed) of the contiguous upscale (two slices of
copies of the same layers). Each duplicate layer's change pattern: the vector over the kept modules (q, k,
v, gate, up, both norms) of log rel = log ‖ΔW‖/‖W₀‖ from the upscale as built to the end, minus
each module's mean over the duplicates (so "duplicates change more than originals", another
claim, does not count). Similarity: cosine of two layers' patterns. Effect: mean similarity of
pairs within one slice − mean similarity of pairs across slices, matched in depth distance:
across-slice pairs are duplicates with different sources (copies of one source start identical),
and both sides are averaged distance by distance, weighted by the within-slice pairs at each
distance (neighbours change alike in any model, so distance must not decide it). Claimed
direction: > 0. One case: contiguous.

One-run form (a manifest): per duplicate layer, its own within − across similarity, matched in
distance the same way (`patterns.slice_similarity_by_layer`); copies of one source averaged into
one unit; one sample over the duplicated source layers.

Refuted when the refutation test (Holm-adjusted) shows the effect below the sesoi — no effect of interest, or the opposite direction: layers across the boundary change more alike. Without
the distance match (all different-source pairs across slices) the contrast mixes in how
similarity falls with depth distance; that is why the match is part of the metric.
"""

from __future__ import annotations

from harness.claims.lab import deltas
from harness.claims.measured import Measured, Within
from harness.claims.measures import measure
from harness.claims.measures._cases import check_case
from harness.claims.patterns import slice_pair_similarity, slice_similarity_by_layer
from harness.claims.units import by_source

CASES = ("contiguous",)
DUP_SOURCE_CONTRAST = "duplicated source layer (its copies' within − across similarity, averaged)"


@measure("slices_self_connected")
def slices_self_connected(lab, seeds: list[int], case: str) -> Measured:
    strategy = check_case("slices_self_connected", case, CASES)
    lm = lab.layer_map(strategy)
    runs = [lab.upscaled(seed, strategy) for seed in seeds]
    per_run = [deltas(run, lm) for run in runs]
    pairs = [slice_pair_similarity(rows, lm) for rows in per_run]
    effects = [w - b for w, b in pairs]
    units = tuple(by_source(slice_similarity_by_layer(per_run[0], lm), lm, "dup").values())

    def plots():
        from harness.heatmap import plot_deltas

        return {f"rel change, seed {seeds[0]} ({strategy})":
                plot_deltas(per_run[0], metric="rel", layer_map=lm)}

    return Measured(effects=effects, seeds=seeds, runs=[r.key for r in runs],
                    within=Within((units,), unit=DUP_SOURCE_CONTRAST) if units else None,
                    notes={"mean similarity within slices": [w for w, _ in pairs],
                           "mean similarity across slices (matched)": [b for _, b in pairs]},
                    plots=plots)
