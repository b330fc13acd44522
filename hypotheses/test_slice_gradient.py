"""Each duplicated slice has its own depth gradient.

Seed: "Training an upscaled model with two slices of duplicate layers does two things: Each
slice of duplicated layers has its own gradient. ..."

Operationalisation: per run (seed) of the contiguous upscale: `within`: mean over duplicate
slices and modules of Spearman(position in slice, change), claimed > 0; `break`: the jump of the
duplicate region's change profile at the second slice's start against elsewhere, claimed > 0.

The protocol is the registry entry `slice_own_gradient` in harness/claims/registry.yaml; the
measure is harness/claims/measures/slice_gradient.py.

Refuted when the refutation test (Holm-adjusted) shows the effect below the sesoi — no effect of interest, or the opposite direction (change falls inside slices; no restart at the boundary).
"""

from __future__ import annotations

import pytest

from fixtures.params import claim_params


@pytest.mark.parametrize("scale, case", claim_params("slice_own_gradient"))
def test_slice_own_gradient(scale, case, claim):
    result = claim.decide("slice_own_gradient", case)
    assert result.holds, result.message
