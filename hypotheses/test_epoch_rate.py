"""Duplicates change as fast in the second epoch as in the first.

Seed: "A 600MB dataset was nowhere near in stabilizing the empty/duplicated layers. (Pertubed
rate of change remained the same for epoch 1 & 2)"; "There are no indications that the duplicate
layers are 'slowing down'".

Operationalisation: per seed, two epochs of the contiguous upscale: per (layer, module) ‖Δ epoch
2‖ / ‖Δ epoch 1‖; effect: mean over dup units − mean over orig units, claimed > 0 (the schedule
slows every layer, so the claim is relative).

The protocol is the registry entry `dup_rate_not_slowing` in harness/claims/registry.yaml; the
measure is harness/claims/measures/epoch_rate.py.

Refuted when the refutation test (Holm-adjusted) shows the effect below the sesoi — no effect of interest, or the opposite direction: duplicates slow down more than the originals (they
settle).
"""

from __future__ import annotations

import pytest

from fixtures.params import claim_params


@pytest.mark.parametrize("scale, case", claim_params("dup_rate_not_slowing"))
def test_dup_rate_not_slowing(scale, case, claim):
    result = claim.decide("dup_rate_not_slowing", case)
    assert result.holds, result.message
