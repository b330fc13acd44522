"""The measures: one function per claim id, `(lab, seeds, case) -> Measured`, registered by id.

Importing this package imports every measure module, so `MEASURES` is complete wherever it is
used (a single hypothesis file, the family of primaries, a helper script).
"""

from __future__ import annotations

from importlib import import_module
from pkgutil import iter_modules

from harness.claims.measured import Measure

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


for _info in iter_modules(__path__):
    import_module(f"{__name__}.{_info.name}")
