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
# claim id -> cases whose own runs (shared with no other case) are the suite's longest to train:
# the plugin schedules them first, so that one worker trains those while the others train the
# bases every claim shares, instead of after them.
FIRST: dict[str, frozenset[str]] = {}


def measure(claim_id: str, *, first: tuple[str, ...] = ()):
    """Register `fn(lab, seeds, case) -> Measured` as the measure of `claim_id`; `first`: cases
    to schedule before all others (see FIRST)."""

    def register(fn: Measure) -> Measure:
        if claim_id in MEASURES:
            raise ValueError(f"claim {claim_id!r} has two measures: {MEASURES[claim_id].__module__} "
                             f"and {fn.__module__}")
        MEASURES[claim_id] = fn
        if first:
            FIRST[claim_id] = frozenset(first)
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
