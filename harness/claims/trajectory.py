"""The time claims' long runs, and what is read from their snapshots between the ends.

`long_run` / `long_normal_run` fetch the shared two-epoch run (`harness.claims.time.Long`) of the
seed's contiguous upscale and of the normal model. Its dense snapshots feed four claims
(`few_steps_reconnect`, `dups_saturate`, `dup_rate_not_slowing`, `top_down_gradient`); at `real`
they are the cache's bulk: 19 snapshots of 0.88 GB on the upscale and 0.54 GB on the normal model
at the `gpu` profile, ~27 GB a seed, ~270 GB for 10 seeds (docs/real.md), where a GPU runner has
~64 GB. A Setting with `thin_long` therefore settles each long run as soon as it is finished,
before the kind's next seed trains (harness.runs.many `after`): `derive` computes and stores beside
the run (harness.claims.memo) everything those claims read from its snapshots between the ends,
then harness.runs.cache.thin drops those snapshots; step 0, the epoch ends and the last step stay.

`derive` reads a superset of what the claims read, through the same memoised functions with the
same arguments, so a thinned run gives every measure the same numbers, bit for bit, as the full
recording (tests/test_trajectory.py measures the four claims both ways); a measure that asked
for a pair `derive` does not compute would fail with one UplabError naming the thinned step
(RunResult.require_snapshot), never read another number. The cost is where the claims' own cost
was going to be: the weight deltas from step 0 to each snapshot (with and without the layer map),
between consecutive snapshots (without), and the duplicates' ablation curves.
"""

from __future__ import annotations

from harness.claims.lab import deltas
from harness.claims.memo import stored
from harness.claims.time import Long, ablation_cost, direction_cos, dup_zeroed_names, mean_fill
from harness.runs.cache import thin


def long_run(lab, seed: int, **overrides):
    """The shared 2-epoch run of the contiguous (seed's) upscale (overrides: e.g. lab.sgd())."""
    lm = lab.layer_map("contiguous")
    return lab.upscaled(seed, "contiguous", **Long(lab.epoch_steps).overrides, **overrides,
                        settle=settler(lab, lm))


def long_normal_run(lab, seed: int, **overrides):
    """The normal (not upscaled) fine-tune under `long_run`'s schedule, steps and snapshots: the
    control that shows how ordinary layers' change grows over the same cumulative LR."""
    return lab.normal(seed, **Long(lab.epoch_steps).overrides, **overrides, settle=settler(lab, None))


def probe_steps(long: Long) -> tuple[int, ...]:
    """Ablations at the dense early snapshots and the two epoch ends (enough for the half-time)."""
    return tuple(sorted(set(long.early) | {long.epoch, long.steps}))


# (run key, probed steps) -> curves: both cases of few_steps_reconnect read the same ablations of
# the same runs, and a session measures a primary twice (its own test and the Holm family).
_CURVES: dict[tuple[str, tuple[int, ...]], tuple[list, list, list]] = {}


def curves(run, lm, steps, model_type: str) -> tuple[list, list, list]:
    """(ablation cost, mean fill, direction cosine) of the duplicates at each probed step, once per
    run and process, and kept on disk beside the run (harness.claims.memo)."""
    key = (run.key, tuple(steps))
    if key not in _CURVES:
        got = stored(run, ["reconnect_curves", list(steps), repr(lm), model_type],
                     lambda: list(_curves(run, lm, steps, model_type)))
        _CURVES[key] = tuple(list(c) for c in got)
    return _CURVES[key]


def _curves(run, lm, steps, model_type: str):
    dups = lm.indices("dup")
    cost = [ablation_cost(run, s, dups) for s in steps]
    fill = [mean_fill(deltas(run, lm, 0, s)) if s else 0.0 for s in steps]
    names = dup_zeroed_names(lm, model_type)
    base, final = run.state_dict(0), run.state_dict(steps[-1])
    cos = [direction_cos(run.state_dict(s), final, base, names) for s in steps if s]
    return cost, fill, cos


def kept(run) -> set[int]:
    """The snapshots a thinned long run keeps: step 0, every epoch end and the last step."""
    steps = run.metrics["snapshots"]
    per_epoch = run.metrics["steps_per_epoch"]
    return {0, steps[-1]} | {s for s in steps if s and s % per_epoch == 0}


def derive(run, lm, long: Long, model_type: str) -> None:
    """Compute and store what the time claims read from the run's snapshots between its ends: the
    deltas from step 0 to every snapshot (layer map: fill, saturation, epoch rates; none: change
    curves), between consecutive snapshots (rate-of-change profiles), and on the upscale the
    duplicates' ablation, fill and direction curves (few_steps_reconnect)."""
    steps = run.metrics["snapshots"]
    for s in steps[1:]:
        deltas(run, None, 0, s)
        if lm is not None:
            deltas(run, lm, 0, s)
    for a, b in zip(steps[1:], steps[2:]):
        deltas(run, None, a, b)
    if lm is not None:
        curves(run, lm, probe_steps(long), model_type)


def settler(lab, lm):
    """The `settle` of a long run under this lab: derive, then thin, where the Setting thins long
    runs (`thin_long`); None elsewhere (a manifest's runs are the user's, tiny runs are small)."""
    setting = getattr(lab, "setting", None)
    if setting is None or not setting.thin_long:
        return None
    long, model_type = Long(lab.epoch_steps), setting.model_type
    return lambda run: thin(run, kept(run), lambda r: derive(r, lm, long, model_type))
