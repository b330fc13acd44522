"""LoRA shows the same pattern: duplicates change more than originals.

Seed: "### What if we use LoRA?" (about the pattern of Sample B: duplicates more responsive).

Operationalisation: per seed, the contiguous upscale fine-tuned with LoRA (r=8, alpha=16, every
linear module): dups_more_responsive's depth-controlled metric on the effective ΔW = s·B·A,
claimed > 0; a placebo on a LoRA fine-tune of the normal model must not be supported.

The protocol is the registry entry `lora_same_pattern` in harness/claims/registry.yaml; the
measure is harness/claims/measures/lora.py.

Refuted when the refutation test (Holm-adjusted) shows the effect below the sesoi — no effect of interest, or the opposite direction: under LoRA the originals change more than the duplicates.
"""

from __future__ import annotations

import pytest

from fixtures.params import claim_params


@pytest.mark.parametrize("scale, case", claim_params("lora_same_pattern"))
def test_lora_same_pattern(scale, case, claim):
    result = claim.decide("lora_same_pattern", case)
    assert result.holds, result.message
