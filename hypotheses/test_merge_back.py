"""Restoring the first two layers from the base recovers original-domain performance.

Seed: "I wonder if we could recover smarts by merging that back in with base, or if those layers
contain the most influence and must be preserved."

Operationalisation: per plain fine-tune (seed): original-domain loss with layers 0-1 reset to
the base's weights − without, claimed < 0; the target-domain cost of the reset beside it.

The protocol is the registry entry `merge_back_first_layers` in harness/claims/registry.yaml;
the measure is harness/claims/measures/merge_back.py.

Refuted when the refutation test (Holm-adjusted) shows the effect above -sesoi — no effect of interest, or the opposite direction: the fine-tuned first layers must be preserved.
"""

from __future__ import annotations

import pytest

from fixtures.params import claim_params


@pytest.mark.parametrize("scale, case", claim_params("merge_back_first_layers"))
def test_merge_back_first_layers(scale, case, claim):
    result = claim.decide("merge_back_first_layers", case)
    assert result.holds, result.message
