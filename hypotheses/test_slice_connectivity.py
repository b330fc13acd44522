"""A duplicated slice is more connected within itself than to the rest of the model.

Seed: "These slice of layers are more connected to each other than to the model's entirety."

Operationalisation: per run (seed) of the contiguous upscale: cosine similarity of duplicate
layers' centred log-rel change patterns, within-slice pairs − distance-matched different-source
pairs across slices, claimed > 0.

The protocol is the registry entry `slices_self_connected` in harness/claims/registry.yaml; the
measure is harness/claims/measures/slice_connectivity.py.

Refuted when the refutation test (Holm-adjusted) shows the effect below the sesoi — no effect of interest, or the opposite direction: layers across the boundary change more alike.
"""

from __future__ import annotations

import pytest

from fixtures.params import claim_params


@pytest.mark.parametrize("scale, case", claim_params("slices_self_connected"))
def test_slices_self_connected(scale, case, claim):
    result = claim.decide("slices_self_connected", case)
    assert result.holds, result.message
