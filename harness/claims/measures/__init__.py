"""The measures: one function per claim id, `(lab, seeds, case) -> Measured`, registered by id.

Importing this package imports every measure module, so `MEASURES` is complete wherever it is
used (a single hypothesis file, the family of primaries, a helper script).
"""

from __future__ import annotations

from importlib import import_module
from pkgutil import iter_modules

from harness.claims.measured import Measure

MEASURES: dict[str, Measure] = {}


def measure(claim_id: str):
    """Register `fn(lab, seeds, case) -> Measured` as the measure of `claim_id`."""

    def register(fn: Measure) -> Measure:
        if claim_id in MEASURES:
            raise ValueError(f"claim {claim_id!r} has two measures: {MEASURES[claim_id].__module__} "
                             f"and {fn.__module__}")
        MEASURES[claim_id] = fn
        return fn

    return register


for _info in iter_modules(__path__):
    import_module(f"{__name__}.{_info.name}")
