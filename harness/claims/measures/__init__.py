"""The measures: one function per claim id, `(lab, seeds, case) -> Measured`, registered by id.

Importing this package imports every measure module, so `MEASURES` is complete wherever it is
used (a single hypothesis file, the family of primaries, a helper script).
"""

from __future__ import annotations

import weakref
from importlib import import_module
from pkgutil import iter_modules

from harness.claims.measured import Measure, Measured

MEASURES: dict[str, Measure] = {}
# claim id -> cases that need the suite's longest runs (18-layer bases at tiny, two-epoch runs, pairs
# trained one after the other), in the order the plugin schedules them before all other tests:
# claims as registered (modules alphabetically), cases as listed. With xdist handing each of two
# workers two tests to start, the first worker trains upscale_room's 18-layer bases and then the
# conflicting-target pair while the second trains the shared bases and both long-run pairs, so
# those runs train early and in parallel and a cold run ends on short tests.
FIRST: dict[str, tuple[str, ...]] = {}


def measure(claim_id: str, *, first: tuple[str, ...] = ()):
    """Register `fn(lab, seeds, case) -> Measured` as the measure of `claim_id`; `first`: cases
    to schedule before all others (see FIRST)."""

    def register(fn: Measure) -> Measure:
        if claim_id in MEASURES:
            raise ValueError(f"claim {claim_id!r} has two measures: {MEASURES[claim_id].__module__} "
                             f"and {fn.__module__}")
        MEASURES[claim_id] = fn
        if first:
            FIRST[claim_id] = tuple(first)
        return fn

    return register


# lab -> {(claim id, seeds, case): Measured}. A primary is measured by its own test and by the
# Holm family (whichever comes first in a process), on the same runs: once is enough.
_MEASURED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def measure_once(lab, claim_id: str, seeds, case: str) -> Measured:
    """`MEASURES[claim_id](lab, seeds, case)`, computed once per lab, seeds and case in a process
    (an error or a skip is raised again each time: nothing is stored for it)."""
    try:
        memo = _MEASURED.setdefault(lab, {})
    except TypeError:  # an object without weak references (a test's stand-in): no memo
        return MEASURES[claim_id](lab, list(seeds), case)
    key = (claim_id, tuple(seeds), case)
    if key not in memo:
        memo[key] = MEASURES[claim_id](lab, list(seeds), case)
    return memo[key]


for _info in iter_modules(__path__):
    import_module(f"{__name__}.{_info.name}")
