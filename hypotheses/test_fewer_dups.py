"""One duplicated layer fills faster than five.

Seed: "What if we duplicate only ONE layer? What about five layers? ... Will the few empty
layers get 'filled' quickly?"

Operationalisation: per seed, both runs under SGD (where a weight grows with its gradient, not by
AdamW's ~lr per element whatever the number of copies): mean fill per duplicate of the zeroed
o_proj/down_proj at the end, one duplicated layer − a five-layer block, claimed > 0; early fill,
spill and retention reported beside it; the AdamW runs are exploratory.

The protocol is the registry entry `fewer_dups_fill_faster` in harness/claims/registry.yaml; the
measure is harness/claims/measures/fewer_dups.py.

Refuted when the refutation test (Holm-adjusted) shows the effect below the sesoi — no effect of interest, or the opposite direction: each of five duplicates fills more than a lone one.
"""

from __future__ import annotations

import pytest

from fixtures.params import claim_params


@pytest.mark.parametrize("scale, case", claim_params("fewer_dups_fill_faster"))
def test_fewer_dups_fill_faster(scale, case, claim):
    result = claim.decide("fewer_dups_fill_faster", case)
    assert result.holds, result.message
