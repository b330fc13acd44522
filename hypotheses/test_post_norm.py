"""post_attention_layernorm moves in the duplicated layers.

Seed: "`post_attention_layernorm` interestingly had some changes in the upscale's duplicated
layers, unlike Cydonia where latter layers were completely unchanged."

Operationalisation: per run (seed): log(mean rel change of post_attention_layernorm over dup
layers / over orig layers), step 0 -> end, claimed > 0. Cases: the upscale strategy.

The protocol is the registry entry `post_norm_moves_in_dups` in harness/claims/registry.yaml;
the measure is harness/claims/measures/post_norm.py.

Refuted if the CI lies wholly below 0: the norm moves less in duplicates than in originals.
"""

from __future__ import annotations

import pytest

from fixtures.params import claim_params


@pytest.mark.parametrize("scale, case", claim_params("post_norm_moves_in_dups"))
def test_post_norm_moves_in_dups(scale, case, claim):
    result = claim.decide("post_norm_moves_in_dups", case)
    assert result.holds, result.message
