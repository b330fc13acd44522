"""Freezing layers of a normal model does what the upscale does (for retention).

Seed: "### Can you replicate this effect on normal models by freezing layers?"

Operationalisation: per seed: original-domain loss rise of the normal model fine-tuned with the
layers the upscale duplicates frozen − of the contiguous upscale's fine-tune; an equivalence
claim (TOST within ±sesoi, both in the registry).

The protocol is the registry entry `freezing_replicates_effect` in harness/claims/registry.yaml;
the measure is harness/claims/measures/freezing_normal.py.

Refuted if the CI lies wholly outside ±sesoi on one side: a retention demonstrably different.
"""

from __future__ import annotations

import pytest

from fixtures.params import claim_params


@pytest.mark.parametrize("scale, case", claim_params("freezing_replicates_effect"))
def test_freezing_replicates_effect(scale, case, claim):
    result = claim.decide("freezing_replicates_effect", case)
    assert result.holds, result.message
