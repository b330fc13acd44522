"""Freezing layers of a normal model does what the upscale does (for retention).

Seed: "### Can you replicate this effect on normal models by freezing layers?"

Operationalisation: per seed: original-domain loss rise of the normal model fine-tuned with the
layers the upscale duplicates frozen − of the contiguous upscale's fine-tune, at matched target
loss, in units of the normal fine-tune's target gain (does freezing reproduce the upscale's
retention effect?); an equivalence claim (TOST within ±sesoi, both in the registry).

The protocol is the registry entry `freezing_replicates_effect` in harness/claims/registry.yaml;
the measure is harness/claims/measures/freezing_normal.py.

Refuted when the refutation test (Holm-adjusted) shows a difference of at least the sesoi: a retention demonstrably different.
"""

from __future__ import annotations

import pytest

from fixtures.params import claim_params


@pytest.mark.parametrize("scale, case", claim_params("freezing_replicates_effect"))
def test_freezing_replicates_effect(scale, case, claim):
    result = claim.decide("freezing_replicates_effect", case)
    assert result.holds, result.message
