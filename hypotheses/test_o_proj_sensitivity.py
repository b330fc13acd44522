"""A duplicate's o_proj is less sensitive to training than its down_proj.

Seed: "The duplicated layers in `o_proj` are less sensitive for some reason." (Impressions, on
the diff heatmaps of the 39B upscale; in the duplicates o_proj and down_proj start at zero.)

Operationalisation: per training run (seed): in the duplicates, each zeroed module's fill =
‖W‖/‖W_src‖ at the end; effect log(mean fill of o_proj / mean fill of down_proj), claimed < 0.
Cases: the upscale strategy.

The protocol is the registry entry `o_proj_less_sensitive` in harness/claims/registry.yaml; the
measure is harness/claims/measures/o_proj_sensitivity.py.

Refuted when the refutation test (Holm-adjusted) shows the effect above -sesoi — no effect of interest, or the opposite direction: o_proj refills faster than down_proj.
"""

from __future__ import annotations

import pytest

from fixtures.params import claim_params


@pytest.mark.parametrize("scale, case", claim_params("o_proj_less_sensitive"))
def test_o_proj_less_sensitive(scale, case, claim):
    result = claim.decide("o_proj_less_sensitive", case)
    assert result.holds, result.message
