"""post_attention_layernorm moves in the duplicated layers.

Seed: "`post_attention_layernorm` interestingly had some changes in the upscale's duplicated
layers, unlike Cydonia where latter layers were completely unchanged."

Operationalisation: per run (seed): post_attention_layernorm's log rel change of each duplicate
minus the originals' profile interpolated at the duplicate's own output depth, averaged per
duplicated source and over sources, step 0 -> end, claimed > 0; a placebo on the normal
fine-tune must not be supported. Cases: the upscale strategy; the unmatched log ratio is
exploratory.

The protocol is the registry entry `post_norm_moves_in_dups` in harness/claims/registry.yaml;
the measure is harness/claims/measures/post_norm.py.

Refuted when the refutation test (Holm-adjusted) shows the effect below the sesoi — no effect of interest, or the opposite direction: the norm moves less in duplicates than in originals.
"""

from __future__ import annotations

import pytest

from fixtures.params import claim_params


@pytest.mark.parametrize("scale, case", claim_params("post_norm_moves_in_dups"))
def test_post_norm_moves_in_dups(scale, case, claim):
    result = claim.decide("post_norm_moves_in_dups", case)
    assert result.holds, result.message
