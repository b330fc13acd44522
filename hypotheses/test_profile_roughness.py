"""The upscale breaks the smooth depth profile of change.

Seed: "The upscale clearly has an effect on training. Control A & B show a smooth gradient
unlike Control C & Sample A, B, C where the duplicated layers perturb the heatmap."

Operationalisation: per seed: roughness (mean |second difference| / mean) of the change profile
of the upscaled fine-tune − of the plain fine-tune of the same base, claimed > 0. Cases: the
upscale strategy. The upscale is deeper, which leans against the claim (see the measure).

The protocol is the registry entry `upscale_perturbs_profile` in harness/claims/registry.yaml;
the measure is harness/claims/measures/profile_roughness.py.

Refuted when the refutation test (Holm-adjusted) shows the effect below the sesoi — no effect of interest, or the opposite direction: the plain fine-tune's profile is the rougher.
"""

from __future__ import annotations

import pytest

from fixtures.params import claim_params


@pytest.mark.parametrize("scale, case", claim_params("upscale_perturbs_profile"))
def test_upscale_perturbs_profile(scale, case, claim):
    result = claim.decide("upscale_perturbs_profile", case)
    assert result.holds, result.message
