"""Upscaling gives room to train.

Seed: "Upscaling can 'provide room' for further training."

Operationalisation: per seed: held-out target loss at the end, the contiguous upscale's fine-tune
− the fine-tune of a base pre-trained natively at the upscale's depth (same seed and data
order), in units of the normal fine-tune's target gain, claimed < 0 (room beyond parameter
count). Exploratory: each upscale strategy against the plain fine-tune of the same base.

The protocol is the registry entry `upscale_room` in harness/claims/registry.yaml; the measure
is harness/claims/measures/capacity.py.

Refuted when the refutation test (Holm-adjusted) shows the effect above -sesoi — no effect of interest, or the opposite direction: the upscale learns the target worse.
"""

from __future__ import annotations

import pytest

from fixtures.params import claim_params


@pytest.mark.parametrize("scale, case", claim_params("upscale_room"))
def test_upscale_room(scale, case, claim):
    result = claim.decide("upscale_room", case)
    assert result.holds, result.message
