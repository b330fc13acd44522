"""One duplicated layer fills faster than five.

Seed: "What if we duplicate only ONE layer? What about five layers? ... Will the few empty
layers get 'filled' quickly?"

Operationalisation: per seed: mean fill per duplicate of the zeroed o_proj/down_proj at the end,
one duplicated layer − a five-layer block, claimed > 0; early fill, spill and retention reported
beside it.

The protocol is the registry entry `fewer_dups_fill_faster` in harness/claims/registry.yaml; the
measure is harness/claims/measures/fewer_dups.py.

Refuted if the CI lies wholly below 0: each of five duplicates fills more than a lone one.
"""

from __future__ import annotations

import pytest

from fixtures.params import claim_params


@pytest.mark.parametrize("scale, case", claim_params("fewer_dups_fill_faster"))
def test_fewer_dups_fill_faster(scale, case, claim):
    result = claim.decide("fewer_dups_fill_faster", case)
    assert result.holds, result.message
