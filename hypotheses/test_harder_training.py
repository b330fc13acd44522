"""Training harder widens the upscale's retention advantage.

Seed: "What if we train it harder via learning rate or epoch?"; "Using the same LR on a larger
model should have been more destructive."

Operationalisation: per seed: retention gap (original-domain loss at the end, upscale − normal)
at 10/3 of the default LR − at the default LR, in units of the normal fine-tune's target gain,
claimed < 0.

The protocol is the registry entry `harder_training` in harness/claims/registry.yaml; the
measure is harness/claims/measures/harder_training.py.

Refuted when the refutation test (Holm-adjusted) shows the effect above -sesoi — no effect of interest, or the opposite direction: at the higher LR the upscale keeps less of its advantage.
"""

from __future__ import annotations

import pytest

from fixtures.params import claim_params


@pytest.mark.parametrize("scale, case", claim_params("harder_training"))
def test_harder_training(scale, case, claim):
    result = claim.decide("harder_training", case)
    assert result.holds, result.message
