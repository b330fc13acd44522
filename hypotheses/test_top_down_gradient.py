"""A plain fine-tune changes the top layers first, then descends.

Seed: "Training a normal, non-upscaled model affects the top layers first and slowly descends to
the bottom layers over time." (Top = layers near the output.)

Operationalisation: per plain fine-tune (seed), on the change profile (rel per layer, modules
scaled to mean 1): `descent` (primary, the metric registered first): depth centre of the rate of
change in the last snapshot interval − in the first, claimed < 0; `descent-slope` (exploratory;
it replaced `descent` after its result was seen, a recorded deviation): OLS slope of that centre
over the intervals; `rank`: Spearman(depth, change), start -> end, claimed > 0.

The protocol is the registry entry `top_down_gradient` in harness/claims/registry.yaml; the
measure is harness/claims/measures/top_down_gradient.py.

Refuted when the refutation test (Holm-adjusted) shows the effect short of the sesoi, or on the other side of 0 (the change moves up; the bottom changes
most).
"""

from __future__ import annotations

import pytest

from fixtures.params import claim_params


@pytest.mark.parametrize("scale, case", claim_params("top_down_gradient"))
def test_top_down_gradient(scale, case, claim):
    result = claim.decide("top_down_gradient", case)
    assert result.holds, result.message
