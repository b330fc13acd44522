"""The original layer before a duplicated slice holds the slice together.

Seed: "[Question] Does this mean that the **original layer** before the slice is the one holding
that whole duplicated slice together?"

Operationalisation: per seed, the fine-tuned contiguous upscale: target loss rise from skipping
the anchor (the orig layer right before the first duplicated slice) − from skipping the matched
original before it, claimed > 0.

The protocol is the registry entry `anchor_holds_slice` in harness/claims/registry.yaml; the
measure is harness/claims/measures/anchor.py.

Refuted when the refutation test (Holm-adjusted) shows the effect below the sesoi — no effect of interest, or the opposite direction: skipping the matched original costs more than the anchor.
"""

from __future__ import annotations

import pytest

from fixtures.params import claim_params


@pytest.mark.parametrize("scale, case", claim_params("anchor_holds_slice"))
def test_anchor_holds_slice(scale, case, claim):
    result = claim.decide("anchor_holds_slice", case)
    assert result.holds, result.message
