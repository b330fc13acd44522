"""Interleaving gives a more balanced upscale.

Seed: "[Question] What if we interleave original and duplicate layers? Will that result in a
more balanced, responsive upscale?"

Operationalisation: per seed: coefficient of variation across the duplicate layers of their mean
rel change, interleaved − contiguous upscale, claimed < 0; the target loss is reported beside
it.

The protocol is the registry entry `interleaved_more_balanced` in harness/claims/registry.yaml;
the measure is harness/claims/measures/interleaving.py.

Refuted when the refutation test (Holm-adjusted) shows the effect above -sesoi — no effect of interest, or the opposite direction: interleaving spreads the change less evenly.
"""

from __future__ import annotations

import pytest

from fixtures.params import claim_params


@pytest.mark.parametrize("scale, case", claim_params("interleaved_more_balanced"))
def test_interleaved_more_balanced(scale, case, claim):
    result = claim.decide("interleaved_more_balanced", case)
    assert result.holds, result.message
