"""LoRA shows the same pattern: duplicates change more than originals.

Seed: "### What if we use LoRA?" (about the pattern of Sample B: duplicates more responsive).

Operationalisation: per seed, the contiguous upscale fine-tuned with LoRA (r=8, alpha=16, every
linear module): log(mean rel of the effective ΔW = s·B·A over dup layers / over orig layers),
claimed > 0.

The protocol is the registry entry `lora_same_pattern` in harness/claims/registry.yaml; the
measure is harness/claims/measures/lora.py.

Refuted if the CI lies wholly below 0: under LoRA the originals change more than the duplicates.
"""

from __future__ import annotations

import pytest

from fixtures.params import claim_params


@pytest.mark.parametrize("scale, case", claim_params("lora_same_pattern"))
def test_lora_same_pattern(scale, case, claim):
    result = claim.decide("lora_same_pattern", case)
    assert result.holds, result.message
