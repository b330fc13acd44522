"""Upscaling gives room to train.

Seed: "Upscaling can 'provide room' for further training."

Operationalisation: per seed: held-out target loss at the end, upscaled fine-tune − plain
fine-tune of the same base (same seed and data order), claimed < 0. Cases: the upscale strategy.

The protocol is the registry entry `upscale_room` in harness/claims/registry.yaml; the measure
is harness/claims/measures/capacity.py.

Refuted if the CI lies wholly above 0: the upscale learns the target worse.
"""

from __future__ import annotations

import pytest

from fixtures.params import claim_params


@pytest.mark.parametrize("scale, case", claim_params("upscale_room"))
def test_upscale_room(scale, case, claim):
    result = claim.decide("upscale_room", case)
    assert result.holds, result.message
