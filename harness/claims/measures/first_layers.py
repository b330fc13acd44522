"""The first two layers change wildly in a fine-tune.

Seed: "(Not related to upscaling) The first two layers are sus - their weights are wildly
different from the original" and "In some layer types, the change difference for the first two
layers are overwhelmingly huge compared to the other layers".

Operationalisation: per training run (seed), fine-tune the base as is (no upscale); per module,
the relative change rel = ‖ΔW‖/‖W₀‖ of every layer from start to end. For each module, the robust
z of layers 0 and 1 against the median/MAD of the other layers (the suspects are left out of the
reference so they cannot inflate the scale), and the smaller of the two (both layers must stand
out). "In some layer type": the largest of these over modules. Effect: that z − 3 (an outlier
means z > 3). Claimed direction: > 0. One case: `normal` (the plain fine-tune).

One-run form (a manifest): the same effect on each fine-tune the manifest holds — the upscale's
original layers (upscaled model → last snapshot, orig copies in base order) and each control pair
— as units (n = 1 + controls), one sample.

Refuted when the refutation test (Holm-adjusted) shows the effect below the sesoi — no effect of interest, or the opposite direction: in no module do both first layers reach 3 robust sds.
Caveat: the seed's outliers were in a 22B Mistral; a tiny base need not have them, and
‖ΔW‖ instead of rel was checked as a flaw check (same reading).
"""

from __future__ import annotations

from dataclasses import replace

from harness.claims.lab import deltas
from harness.claims.measured import Measured, Within
from harness.claims.measures import measure
from harness.claims.measures._cases import check_case
from harness.claims.patterns import first_layers_z

CASES = ("normal",)
THRESHOLD = 3.0  # robust z beyond which a layer counts as an outlier (the card's "wildly different")
FINE_TUNE = "fine-tune (the upscale's original layers, and each control pair)"


def effect(rows) -> float:
    return max(first_layers_z(rows).values()) - THRESHOLD


def orig_rows(rows, lm):
    """An upscale's rows of its orig layers, renumbered as the base's layers (their sources)."""
    return [replace(r, layer=lm.source_of(r.layer)) for r in rows
            if r.layer is not None and lm.layers[r.layer].role == "orig"]


def one_run(lab) -> Measured:
    """A manifest: the upscale's originals and each control pair are the units."""
    lm = lab.layer_map("contiguous")
    run = lab.upscaled(0, "contiguous")
    controls = lab.controls("the upscale's originals alone are one fine-tune, n = 1")
    rows = {"upscale (original layers)": orig_rows(deltas(run, lm), lm)}
    rows.update({c.name: deltas(c, None) for c in controls})
    values = {name: effect(r) for name, r in rows.items()}

    def plots():
        from harness.heatmap import plot_deltas

        return {f"rel change, {name}": plot_deltas(r, metric="rel") for name, r in rows.items()}

    return Measured(effects=[values["upscale (original layers)"]], seeds=[0],
                    runs=[run.key] + [c.key for c in controls],
                    within=Within((tuple(values.values()),), unit=FINE_TUNE),
                    notes={f"z − 3, {name}": [v] for name, v in values.items()}, plots=plots)


@measure("first_layers_outliers")
def first_layers_outliers(lab, seeds: list[int], case: str) -> Measured:
    check_case("first_layers_outliers", case, CASES)
    if lab.single_run:
        return one_run(lab)
    runs = [lab.normal(seed) for seed in seeds]
    per_run = [deltas(run, None) for run in runs]
    effects = [effect(rows) for rows in per_run]

    def plots():
        from harness.heatmap import plot_deltas

        return {f"rel change, plain fine-tune, seed {seeds[0]}": plot_deltas(per_run[0], metric="rel")}

    return Measured(effects=effects, seeds=seeds, runs=[r.key for r in runs], plots=plots)
