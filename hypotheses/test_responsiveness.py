"""Duplicates change more than originals.

Seed: "The duplicated layers seem to be playing catch up with the original layers ... they are
more responsive to training than the original layers" (Sample B of the model card).

Operationalisation: per training run (seed): the relative weight change rel = ‖ΔW‖/‖W₀‖ of the
fine-tuned upscale, step 0 -> end, over the modules a duplicate keeps at full scale; effect
log(mean rel over dup layers / mean rel over orig layers), claimed > 0. Cases: the upscale
strategy.

The protocol is the registry entry `dups_more_responsive` in harness/claims/registry.yaml; the
measure is harness/claims/measures/responsiveness.py.

Refuted if the CI lies wholly below 0: originals change more.
"""

from __future__ import annotations

import pytest

from fixtures.params import claim_params


@pytest.mark.parametrize("scale, case", claim_params("dups_more_responsive"))
def test_dups_more_responsive(scale, case, claim):
    result = claim.decide("dups_more_responsive", case)
    assert result.holds, result.message
