"""What a claim's measurement hands to the decision: one effect per training run, and its evidence.

A measure (`harness.claims.measures`) computes one registered case of one claim from the lab's runs.
It returns a `Measured`; the registry (the protocol) says how it is decided, the family applies
Holm across the primaries, and the plugin records and asserts. Plots are made only when the result
is reported (`plots()`), so the family can compute other claims' primaries cheaply.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Within:
    """A claim's within-run form, for one run trained elsewhere (a manifest: n = 1 run).

    `groups`: one sample (`(values,)`, the direction of their mean) or two (`(a, b)`: mean a −
    mean b). Each value is one *unit*: copies of one source layer are averaged into one unit before
    they get here (`harness.claims.units`), so the effective n is the number of independent source
    layers (or slices), never the number of output layers. `unit` names it for the report.
    """

    groups: tuple[tuple[float, ...], ...]
    unit: str

    def __post_init__(self) -> None:
        if len(self.groups) not in (1, 2) or any(len(g) == 0 for g in self.groups):
            raise ValueError("a within-run form is one or two non-empty groups of unit values")
        object.__setattr__(self, "groups", tuple(tuple(float(v) for v in g) for g in self.groups))

    @property
    def n(self) -> int:
        return sum(len(g) for g in self.groups)


@dataclass(frozen=True)
class Measured:
    """One case of one claim, measured: per-run effects (one per seed) and what stands behind them."""

    effects: tuple[float, ...]
    seeds: tuple[int, ...]
    runs: tuple[str, ...] = ()  # cache keys of every run the effects read
    within: Within | None = None  # the within-run form, where the claim has one
    plots: Callable[[], Mapping[str, Any]] | None = None  # caption -> figure, made on demand
    notes: Mapping[str, Sequence[float]] = field(default_factory=dict)  # side numbers per seed, shown not decided
    # the placebo arm: the same metric on runs with no duplicates (pseudo-duplicates at the same
    # relative depths), one per seed; decided like the claim and shown beside it (a control check)
    placebo: tuple[float, ...] | None = None
    placebo_metric: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "effects", tuple(float(e) for e in self.effects))
        object.__setattr__(self, "seeds", tuple(int(s) for s in self.seeds))
        object.__setattr__(self, "runs", tuple(str(r) for r in self.runs))
        if self.placebo is not None:
            object.__setattr__(self, "placebo", tuple(float(e) for e in self.placebo))
            if len(self.placebo) != len(self.seeds):
                raise ValueError(f"one placebo effect per seed: got {len(self.placebo)}")
        if len(self.effects) != len(self.seeds):
            raise ValueError(f"one effect per seed: got {len(self.effects)} effects for "
                             f"{len(self.seeds)} seeds")


Measure = Callable[..., Measured]  # (lab, seeds, case) -> Measured
