"""A few steps reconnect the zeroed duplicates.

Seed: "can a single/few updates to the model reconnect the duplicated layers? Are we really
repairing the 'neurons' step-by-step, or have they been significantly rearranged by the first
(few?) steps?"

Operationalisation: per seed, two epochs of the contiguous upscale: log2(half-time of the
ablation cost of skipping every duplicate / half-time of the duplicates' fill), claimed < 0
(function before weights).

The protocol is the registry entry `few_steps_reconnect` in harness/claims/registry.yaml; the
measure is harness/claims/measures/reconnect.py.

Refuted when the refutation test (Holm-adjusted) shows the effect above -sesoi — no effect of interest, or the opposite direction: the function follows the fill (step-by-step repair).
"""

from __future__ import annotations

import pytest

from fixtures.params import claim_params


@pytest.mark.parametrize("scale, case", claim_params("few_steps_reconnect"))
def test_few_steps_reconnect(scale, case, claim):
    result = claim.decide("few_steps_reconnect", case)
    assert result.holds, result.message
