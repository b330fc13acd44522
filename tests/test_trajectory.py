"""A thinned long run (harness.claims.trajectory) gives the time claims the numbers of the full
recording, bit for bit, and keeps only its ends on disk.

`real` thins its long runs (19 snapshots of 0.5-0.9 GB a run at the gpu profile); here the tiny
lab does it at a few steps, once with the seeds stacked (get_or_run_many's `after`) and once
alone (the per-seed path `real` takes), against the same lab recording everything.
"""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from harness.claims import lab as lab_module
from harness.claims import trajectory
from harness.claims.lab import Lab
from harness.claims.measures import MEASURES
from harness.claims.settings import tiny_setting
from harness.claims.time import Long
from harness.claims.trajectory import long_normal_run, long_run
from harness.data import DataSpec
from harness.errors import UplabError
from harness.runs import tiny_base
from harness.runs.result import snapshot_name

EPOCH = 4  # fine-tune steps an epoch: a long run is 8 steps with a snapshot at each
SEEDS = [0, 1]
# (claim, case): every claim that reads a long run's snapshots between its ends
TIME_CLAIMS = [("few_steps_reconnect", "contiguous"), ("few_steps_reconnect", "within-few"),
               ("dups_saturate", "contiguous"), ("dup_rate_not_slowing", "contiguous"),
               ("top_down_gradient", "descent"), ("top_down_gradient", "descent-slope")]


def short_setting(thin: bool):
    data = DataSpec.synthetic("target", size=EPOCH * 32, replay=0.5)
    return replace(tiny_setting(), base_of=lambda seed: tiny_base(seed, steps=60),
                   finetune={"snapshots": (0,), "data": data}, epoch=EPOCH, share_long=False,
                   thin_long=thin)


def measured(lab):
    # in-process memos are keyed by run key, which both labs' runs share: measure each lab afresh
    trajectory._CURVES.clear()
    lab_module._DELTAS.clear()
    out = {}
    for claim, case in TIME_CLAIMS:
        try:
            m = MEASURES[claim](lab, SEEDS, case)
            out[(claim, case)] = (list(m.effects), json.dumps(m.notes, sort_keys=True, default=repr))
        except (ValueError, UplabError) as e:  # a claim undefined on these 8 steps: the same message
            out[(claim, case)] = ("raised", str(e))
    return out


@pytest.fixture(scope="module", params=[(), tuple(SEEDS)], ids=["alone", "stacked"])
def pair(request, tmp_path_factory):
    full = Lab(tmp_path_factory.mktemp("full"), short_setting(False), request.param)
    thin = Lab(tmp_path_factory.mktemp("thin"), short_setting(True), request.param)
    return full, thin


def test_a_thinned_long_run_measures_as_the_full_recording(pair):
    full, thin = pair
    want, got = measured(full), measured(thin)
    assert got == want
    assert sum(v[0] != "raised" for v in want.values()) >= 4  # most claims are defined and compared


def test_a_thinned_long_run_keeps_its_ends_and_names_what_it_dropped(pair):
    full, thin = pair
    steps = Long(EPOCH).overrides["snapshots"]
    assert len(steps) == 2 * EPOCH + 1
    for fetch in (long_run, long_normal_run):
        kept = fetch(full, 0)
        assert all(kept.snapshot_path(s).is_file() for s in steps) and not kept.thinned()
        run = fetch(thin, 0)
        on_disk = sorted(s for s in steps if (run.path / snapshot_name(s)).is_file())
        assert on_disk == [0, EPOCH, 2 * EPOCH]
        assert run.thinned() == [s for s in steps if s not in on_disk]
        assert run.steps == list(steps)  # its scores and metrics are whole
        with pytest.raises(UplabError, match="no longer keeps its snapshot at step 1: it was thinned"):
            run.state_dict(1)
        assert run.state_dict(EPOCH).keys() == kept.state_dict(EPOCH).keys()


def test_a_thinned_entry_is_a_finished_run_for_a_new_session(pair):
    """The marker lists only the files that stay: the next session finds the run, does not train
    it again, and settling it twice changes nothing."""
    _, thin = pair
    run = long_run(thin, 1)
    before = {p.name: p.stat().st_mtime_ns for p in run.path.iterdir()}
    again = Lab(thin.cache, thin.setting, thin.together)
    assert long_run(again, 1).path == run.path
    assert {p.name: p.stat().st_mtime_ns for p in run.path.iterdir()} == before
