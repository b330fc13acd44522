"""One recorded claim result: the unit the pytest plugin writes and the report reads.

A record is plain data (JSON-able through `to_dict`), so it travels from pytest-xdist workers
to the controller and into `claims.json` unchanged, and the report can be rebuilt from that
file alone. Plots are stored as base64-encoded PNG.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from harness.stats.decision import VERDICTS as DECIDED

# the report's one verdict list: the statistics' four, and a claim whose runs missed its regime
NOT_IN_REGIME = "not in regime"
VERDICTS = (*DECIDED, NOT_IN_REGIME)

SCALE_ORDER = ("tiny", "small", "real", "full")


@dataclass(frozen=True)
class ClaimRecord:
    """A claim decided at one scale (and case, e.g. one strategy) by one test.

    A primary result's `decision` is the Holm-decided one (p_adj adjusted across the family of
    primaries at its scale, `family`); a secondary (exploratory) result's is unadjusted and
    never decides the claim. `protocol` is the registry's case (metric, unit, direction, test,
    sesoi and why) plus the entry's card sentence, controls, notes and deviations.
    """

    id: str
    scale: str
    statement: str
    method: str  # the operationalisation: which runs, which per-run effect
    expected: str | None  # the recorded baseline's verdict; None: no baseline (raw outcome)
    decision: dict[str, Any]  # harness.stats.Decision.to_dict(): Holm-adjusted for a primary
    reason: str | None = None  # the registry's argument for the expected verdict at this scale
    primary: bool = True
    protocol: dict[str, Any] = field(default_factory=dict)
    family: dict[str, Any] | None = None  # primaries: {"size": m, "claims": [ids]}
    detectable: dict[str, Any] | None = None  # inconclusive: {"mde", "power_at_sesoi", "alpha", ...}
    baseline: dict[str, Any] | None = None  # the recorded result compared with, and "moved"
    outcome: str = ""  # what pytest said: passed, failed, xfailed (and why)
    units: str = "runs (seeds)"  # what the n counts: runs, or within one run the units
    case: str = ""  # the test's parameter id without the scale, e.g. "contiguous"
    nodeid: str = ""
    direction: str | None = None
    sesoi: float | None = None
    alpha: float = 0.05
    effects: list[float] | None = None  # one per run (seed); None for within-run decisions
    seeds: list[int] | None = None
    runs: list[str] = field(default_factory=list)  # run-spec hashes the effects came from
    plots: dict[str, str] = field(default_factory=dict)  # name -> base64 PNG
    regime: dict[str, Any] | None = None  # harness.claims.regime.Regime.to_dict(): checks per seed
    placebo: dict[str, Any] | None = None  # the placebo arm: metric, effects, decision, control_failed
    notes: dict[str, list] = field(default_factory=dict)  # side numbers per seed, shown, never decided

    @property
    def verdict(self) -> str:
        return self.decision["verdict"]

    @property
    def matched(self) -> bool:
        """Whether the verdict is the recorded one (True where nothing was recorded)."""
        return self.expected is None or self.verdict == self.expected

    @property
    def label(self) -> str:
        return f"{self.id}[{self.case}]" if self.case else self.id

    @property
    def key(self) -> tuple[str, str, str, str]:
        """Identity within a report: a rerun of the same test replaces the earlier record."""
        return (self.nodeid, self.id, self.case, self.scale)

    def to_dict(self) -> dict[str, Any]:
        return _json_safe(asdict(self))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ClaimRecord:
        """Validate a record read back from JSON; ValueError names the bad field."""
        if not isinstance(data, Mapping):
            raise ValueError(f"a claim record must be an object, got {type(data).__name__}")
        known = {f for f in cls.__dataclass_fields__}
        missing = [f for f in ("id", "scale", "statement", "method", "expected", "decision")
                   if f not in data]
        if missing:
            raise ValueError(f"claim record lacks {', '.join(repr(m) for m in missing)}")
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"claim record has unknown fields {unknown}")
        for name in ("id", "scale", "statement", "method"):
            if not isinstance(data[name], str):
                raise ValueError(f"claim record field {name!r} must be a string")
        if data["expected"] is not None and data["expected"] not in VERDICTS:
            raise ValueError(f"claim {data['id']!r}: expected must be one of {VERDICTS} or null")
        for name, kind in (("effects", list), ("seeds", list), ("runs", list), ("protocol", dict),
                           ("family", dict), ("detectable", dict), ("baseline", dict),
                           ("regime", dict), ("placebo", dict), ("notes", dict)):
            if data.get(name) is not None and not isinstance(data[name], kind):
                raise ValueError(f"claim {data['id']!r}: field {name!r} must be a "
                                 f"{'list' if kind is list else 'mapping'}, got {type(data[name]).__name__}")
        decision = data["decision"]
        if not isinstance(decision, Mapping) or decision.get("verdict") not in VERDICTS:
            raise ValueError(f"claim {data['id']!r}: decision must be an object with a verdict")
        _check_numbers(data, decision)
        plots = data.get("plots") or {}
        if not isinstance(plots, Mapping) or not all(isinstance(v, str) for v in plots.values()):
            raise ValueError(f"claim {data['id']!r}: plots must map names to base64 PNG strings")
        return cls(**{k: data[k] for k in data})


# Numbers the report renders and --record copies into a baseline: a string or NaN there would be
# shown as "Effect abc" or crash the strict-JSON baseline write. null stays allowed: a non-finite
# number is written as null (_json_safe), and a report says "n/a" for it.
_FINITE = ("effect", "ci_low", "ci_high", "bound", "ref_bound", "sesoi", "alpha", "ci_level", "level_low",
           "level_high")
_PROBABILITIES = ("p", "p_adj", "p_ref", "p_ref_adj")


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _check_numbers(data: Mapping[str, Any], decision: Mapping[str, Any]) -> None:
    """ValueError naming the first field of a record whose number is of the wrong type or range."""
    who = f"claim {data['id']!r}"
    for name in _FINITE:
        if decision.get(name) is not None and not _number(decision[name]):
            raise ValueError(f"{who}: decision.{name} must be a finite number, got {decision[name]!r}")
    for name in _PROBABILITIES:
        value = decision.get(name)
        if value is not None and not (_number(value) and 0.0 <= value <= 1.0):
            raise ValueError(f"{who}: decision.{name} must be a probability in [0, 1], got {value!r}")
    if decision.get("n") is not None and (type(decision["n"]) is not int or decision["n"] < 0):
        raise ValueError(f"{who}: decision.n must be a whole number >= 0, got {decision['n']!r}")
    for name in ("values",):
        if decision.get(name) is not None and not (isinstance(decision[name], list) and all(
                v is None or _number(v) for v in decision[name])):
            raise ValueError(f"{who}: decision.{name} must be a list of finite numbers")
    for name in ("sesoi", "alpha"):
        if data.get(name) is not None and not _number(data[name]):
            raise ValueError(f"{who}: field {name!r} must be a finite number, got {data[name]!r}")
    if data.get("effects") is not None and not all(v is None or _number(v) for v in data["effects"]):
        raise ValueError(f"{who}: field 'effects' must hold finite numbers (or null)")
    if data.get("seeds") is not None and not all(type(v) is int for v in data["seeds"]):
        raise ValueError(f"{who}: field 'seeds' must hold whole numbers")
    if not all(isinstance(v, str) for v in data.get("runs") or []):
        raise ValueError(f"{who}: field 'runs' must hold run keys (strings)")


def sort_key(record: ClaimRecord) -> tuple:
    """Report order: claim id, case, then scale from small to large."""
    scale_rank = SCALE_ORDER.index(record.scale) if record.scale in SCALE_ORDER else len(SCALE_ORDER)
    return (record.id, record.case, scale_rank, record.scale, record.nodeid)


def _json_safe(value: Any) -> Any:
    """Lists for tuples, plain floats for numpy scalars, None for NaN/Inf (strict JSON)."""
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return value
    if hasattr(value, "item") and callable(value.item):  # numpy scalar
        return _json_safe(value.item())
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    return value
