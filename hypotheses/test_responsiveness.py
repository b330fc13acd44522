"""Duplicates change more than originals.

Seed: "The duplicated layers seem to be playing catch up with the original layers ... they are
more responsive to training than the original layers" (Sample B of the model card).

Operationalisation: per training run (seed): the relative weight change rel = ‖ΔW‖/‖W₀‖ of the
fine-tuned upscale, step 0 -> end, over the modules a duplicate keeps at full scale; effect: per
duplicate, log mean rel minus the originals' log mean-rel profile interpolated at the duplicate's
own output depth (change rises with depth), averaged per duplicated source and over sources;
claimed > 0. A placebo (the same metric on the normal fine-tune at the duplicates' relative
depths) must not be supported, or the test fails. Cases: the upscale strategy; the unmatched and
the earlier source-matched contrasts are exploratory.

The protocol is the registry entry `dups_more_responsive` in harness/claims/registry.yaml; the
measure is harness/claims/measures/responsiveness.py.

Refuted when the refutation test (Holm-adjusted) shows the effect below the sesoi — no effect of interest, or the opposite direction: originals change more.
"""

from __future__ import annotations

import pytest

from fixtures.params import claim_params


@pytest.mark.parametrize("scale, case", claim_params("dups_more_responsive"))
def test_dups_more_responsive(scale, case, claim):
    result = claim.decide("dups_more_responsive", case)
    assert result.holds, result.message
