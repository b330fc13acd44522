"""Upscales keep more of the original behaviour.

Seed: "Training upscaled models will result in retaining more of the original model's
performance & behavior" and "The larger model seems to have preserved more of its smarts".

Operationalisation: per seed: the original-domain loss rise (from step 0) of the upscaled
fine-tune − of the plain fine-tune (same LR, data order), read at matched target loss, in units
of the plain fine-tune's target gain, claimed < 0. Cases: the upscale strategy, the same steps,
the conflicting target.

The protocol is the registry entry `upscale_retains_more` in harness/claims/registry.yaml; the
measure is harness/claims/measures/retention.py.

Refuted when the refutation test (Holm-adjusted) shows the effect above -sesoi — no effect of interest, or the opposite direction: the upscale forgets more of the original domain.
"""

from __future__ import annotations

import pytest

from fixtures.params import claim_params


@pytest.mark.parametrize("scale, case", claim_params("upscale_retains_more"))
def test_upscale_retains_more(scale, case, claim):
    result = claim.decide("upscale_retains_more", case)
    assert result.holds, result.message
