"""Train only the duplicates: freezing the originals of the upscale.

Seed: "### How would it perform and look like if we freeze the original layers?"

Operationalisation: per seed: original-domain loss rise of the contiguous upscale with every
orig layer (and embeddings, norm, head) frozen − of its full fine-tune, at matched target loss,
in units of the normal fine-tune's target gain, claimed < 0; target loss beside it.

The protocol is the registry entry `freeze_originals` in harness/claims/registry.yaml; the
measure is harness/claims/measures/freeze.py.

Refuted when the refutation test (Holm-adjusted) shows the effect above -sesoi — no effect of interest, or the opposite direction: with the originals frozen the upscale forgets more.
"""

from __future__ import annotations

import pytest

from fixtures.params import claim_params


@pytest.mark.parametrize("scale, case", claim_params("freeze_originals"))
def test_freeze_originals(scale, case, claim):
    result = claim.decide("freeze_originals", case)
    assert result.holds, result.message
