"""Duplicates approach a ceiling.

Seed: "There's a 'ceiling value' for the duplicated layers in these slices"; "Saturating these
duplicated layers MIGHT be a good goal to pursue."

Operationalisation: per seed, two epochs of the contiguous upscale: the mean fill of the
duplicates' zeroed o_proj/down_proj against the cumulative learning rate; effect: growth ratio
(late slope / early slope) − 1, claimed < 0.

The protocol is the registry entry `dups_saturate` in harness/claims/registry.yaml; the measure
is harness/claims/measures/saturation.py.

Refuted when the refutation test (Holm-adjusted) shows the effect above -sesoi — no effect of interest, or the opposite direction: the fill accelerates per unit of learning rate.
"""

from __future__ import annotations

import pytest

from fixtures.params import claim_params


@pytest.mark.parametrize("scale, case", claim_params("dups_saturate"))
def test_dups_saturate(scale, case, claim):
    result = claim.decide("dups_saturate", case)
    assert result.holds, result.message
