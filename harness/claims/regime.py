"""Regime checks (manipulation checks): did the runs reach the state a claim is about?

The card's observations come from a fine-tune that worked: it learned its new data, the model
stayed coherent, and the duplicates' zeroed modules refilled. A verdict about such a fine-tune
means nothing where the runs never got there, so every claim names in the registry (`regime`,
written before results) the checks its runs must pass; the registry's `regime_checks` give each
check's metric, threshold and why. Each check is measured per seed on the scale's default
fine-tunes (every claim's runs share their recipe): the normal fine-tune and the contiguous
upscale (`Lab.normal`, `Lab.upscaled`). A claim is **in regime** when every check passes on
every seed; otherwise it is reported "not in regime" with the numbers, never supported or
refuted. A check that cannot be measured at a scale (a manifest has weights only) is shown as
not measured and does not block.

The metric of a check has two forms: exact match where the domain has exact answers (the
synthetic tasks of `tiny` and `small`), held-out loss where it is free text (`real`, `full`).
"""

from __future__ import annotations

import math
import statistics
import weakref
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

from harness.claims import NotApplicable
from harness.claims.lab import deltas
from harness.claims.kinds import fill_value, original_value, target_value

DEFAULT_LAYOUT = "contiguous"


@dataclass(frozen=True)
class CheckResult:
    """One regime check measured on every seed."""

    name: str
    metric: str
    op: str  # ">=" or "<="
    threshold: float
    why: str
    seeds: tuple[int, ...]
    values: tuple[float | None, ...]  # None: not measured at this scale
    not_measured: str = ""  # why, when no value could be measured

    @property
    def passes(self) -> tuple[bool | None, ...]:
        ok = (lambda v: v >= self.threshold) if self.op == ">=" else (lambda v: v <= self.threshold)
        return tuple(None if v is None else bool(ok(v)) for v in self.values)

    @property
    def passed(self) -> bool | None:
        """True when every seed passes, False when one fails, None when nothing was measured."""
        measured = [p for p in self.passes if p is not None]
        return None if not measured else all(measured)

    def to_dict(self) -> dict:
        out = asdict(self)
        out.update(seeds=list(self.seeds), values=list(self.values), passes=list(self.passes),
                   passed=self.passed, seeds_passing=sum(p is True for p in self.passes))
        return out


def _pair(lab, seed):
    """The scale's default fine-tunes of one seed: the normal model and the contiguous upscale."""
    return [lab.normal(seed), lab.upscaled(seed, DEFAULT_LAYOUT)]


def pair_keys(lab, seeds: Sequence[int]) -> list[str]:
    """The cache keys of the default pair of every seed: the runs a regime check reads."""
    return [run.key for seed in seeds for run in _pair(lab, seed)]


def target_learned(lab, seed: int) -> tuple[float, bool]:
    """Worst of the two default fine-tunes: held-out target exact match at the end, or (free
    text) the held-out target loss drop as a fraction of its step-0 value."""
    values = [target_value(run) for run in _pair(lab, seed)]
    return min(v for v, _ in values), any(text for _, text in values)


def original_kept(lab, seed: int) -> tuple[float, bool]:
    """Worst of the two default fine-tunes: held-out original exact match at the end, or (free
    text) the original-domain loss rise in nats."""
    lab.needs("original")
    values = [original_value(run) for run in _pair(lab, seed)]
    if any(text for _, text in values):
        return max(v for v, _ in values), True
    return min(v for v, _ in values), False


def copies_refilled(lab, seed: int) -> tuple[float, bool]:
    """The contiguous upscale's duplicates at the end: the smaller of the mean fills of o_proj and
    down_proj (fill = ‖W‖ / ‖W_source‖)."""
    lm = lab.layer_map(DEFAULT_LAYOUT)
    return fill_value(deltas(lab.upscaled(seed, DEFAULT_LAYOUT), lm)), False


def trained_long_enough(lab, seed: int) -> tuple[float, bool]:
    """How far the default normal fine-tune moved its weights: ‖ΔW‖ / ‖W₀‖ pooled over every
    layer matrix (the upscale's modules that start at 0 left out where no normal run exists)."""
    try:
        run, lm = lab.normal(seed), None
    except NotApplicable:
        run, lm = lab.upscaled(seed, DEFAULT_LAYOUT), lab.layer_map(DEFAULT_LAYOUT)
    change = base = 0.0
    for r in deltas(run, lm):
        if r.layer is not None and r.rel is not None and r.rel > 0:
            change += r.l2 ** 2
            base += (r.l2 / r.rel) ** 2
    if base == 0:
        raise ValueError("no layer with a defined relative change: cannot tell how far the run moved")
    return math.sqrt(change / base), False


def depth_needed(lab, seed: int) -> tuple[float, bool]:
    """The base itself: the median, over the layers of the seed's duplicated range mapped to this
    depth, of the original-domain held-out loss rise when that one layer is skipped (nats). A
    claim that ablates or reads the mapped range means nothing where its layers do no work."""
    from harness.claims.function import skip_rises
    from harness.claims.settings import seed_layout_range

    lab.needs("original")
    start, end = seed_layout_range(lab.setting.depth)
    costs = skip_rises(lab.base(seed), [[layer] for layer in range(start, end)], "original")
    return float(statistics.median(costs)), False


CHECKS: dict[str, Callable] = {
    "target_learned": target_learned,
    "original_kept": original_kept,
    "copies_refilled": copies_refilled,
    "trained_long_enough": trained_long_enough,
    "depth_needed": depth_needed,
}

_MEMO: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def measure_check(lab, name: str, spec, seeds: Sequence[int]) -> CheckResult:
    """Check `name` (its registry spec: metric, threshold, why, text form) on every seed, once
    per lab and seed list in a process."""
    try:
        memo = _MEMO.setdefault(lab, {})
    except TypeError:
        memo = {}
    key = (name, tuple(seeds))
    if key not in memo:
        values, text, why_not = [], False, ""
        for seed in seeds:
            try:
                value, text = CHECKS[name](lab, seed)
            except NotApplicable as e:
                values, why_not = [None] * len(seeds), str(e)
                break
            values.append(float(value))
        form = spec.text if text and spec.text is not None else spec
        op, threshold = (">=", form.at_least) if form.at_least is not None else ("<=", form.at_most)
        memo[key] = CheckResult(name, form.metric, op, float(threshold), form.why, tuple(seeds),
                                tuple(values), why_not)
    return memo[key]


@dataclass(frozen=True)
class Regime:
    """A claim's regime checks at one scale, and whether its runs reached the regime."""

    checks: tuple[CheckResult, ...]

    @property
    def passed(self) -> bool:
        return all(c.passed is not False for c in self.checks)

    @property
    def failing(self) -> list[CheckResult]:
        return [c for c in self.checks if c.passed is False]

    def summary(self) -> str:
        """One line per failing check: its threshold, per-seed values and seeds passing."""
        parts = []
        for c in self.failing:
            shown = ", ".join(f"{v:.3g}" for v in c.values if v is not None)
            parts.append(f"{c.name} ({c.metric} {c.op} {c.threshold:g}): "
                         f"{sum(p is True for p in c.passes)}/{len(c.values)} seeds pass [{shown}]")
        return "; ".join(parts)

    def to_dict(self) -> dict:
        return {"passed": self.passed, "checks": [c.to_dict() for c in self.checks]}


def regime_of(lab, entry, registry, seeds: Sequence[int]) -> Regime:
    """The regime checks the registry names for `entry`, measured on `seeds`."""
    return Regime(tuple(measure_check(lab, name, registry.regime_checks[name], seeds)
                        for name in entry.regime))
