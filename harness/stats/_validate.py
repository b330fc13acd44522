"""Input checks shared by the statistics: one clear ValueError naming the problem and the fix."""

from __future__ import annotations

import numpy as np

DIRECTIONS = ("greater", "less")


def check_direction(direction: str) -> str:
    """The claimed direction, as scipy's `alternative`: "greater" (effect > 0) or "less"."""
    if direction not in DIRECTIONS:
        raise ValueError(
            f"direction must be 'greater' or 'less' (the claimed sign of the effect), got {direction!r}"
        )
    return direction


def check_alpha(alpha: float) -> float:
    if not (isinstance(alpha, (int, float)) and 0.0 < float(alpha) < 1.0):
        raise ValueError(f"alpha must be a number in (0, 1), e.g. 0.05; got {alpha!r}")
    return float(alpha)


def check_sesoi(sesoi: float) -> float:
    if not (isinstance(sesoi, (int, float)) and np.isfinite(sesoi) and sesoi >= 0.0):
        raise ValueError(
            f"sesoi (smallest effect size of interest) must be a finite number >= 0, got {sesoi!r}"
        )
    return float(sesoi)


def check_count(value: int, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def as_values(values, name: str, *, min_n: int = 1, hint: str = "") -> np.ndarray:
    """`values` as a finite 1-D float array with at least `min_n` entries, or a ValueError."""
    try:
        arr = np.asarray(values, dtype=float)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a 1-D sequence of numbers ({exc})") from None
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D (one value per unit), got shape {arr.shape}")
    if arr.size < min_n:
        extra = f"; {hint}" if hint else ""
        raise ValueError(f"{name} needs at least {min_n} values, got {arr.size}{extra}")
    bad = np.flatnonzero(~np.isfinite(arr))
    if bad.size:
        raise ValueError(
            f"{name} has non-finite values (NaN/Inf) at positions {bad.tolist()[:10]}; "
            "drop or fix those runs before deciding"
        )
    return arr


def spawn(seed, k: int) -> list[np.random.SeedSequence]:
    """k independent child seeds of `seed` (an int or a SeedSequence), for separate streams."""
    root = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
    return root.spawn(k)
