"""The first two layers change wildly in a fine-tune.

Seed: "(Not related to upscaling) The first two layers are sus - their weights are wildly
different from the original" and "In some layer types, the change difference for the first two
layers are overwhelmingly huge compared to the other layers".

Operationalisation: per plain fine-tune (seed): per module, the robust z of layers 0 and 1's rel
change against the other layers' median/MAD, the smaller of the two; effect: the largest over
modules − 3, claimed > 0.

The protocol is the registry entry `first_layers_outliers` in harness/claims/registry.yaml; the
measure is harness/claims/measures/first_layers.py.

Refuted when the refutation test (Holm-adjusted) shows the effect below the sesoi — no effect of interest, or the opposite direction: in no module do both first layers reach 3 robust SDs.
"""

from __future__ import annotations

import pytest

from fixtures.params import claim_params


@pytest.mark.parametrize("scale, case", claim_params("first_layers_outliers"))
def test_first_layers_outliers(scale, case, claim):
    result = claim.decide("first_layers_outliers", case)
    assert result.holds, result.message
