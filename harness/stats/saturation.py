"""Saturating vs linear growth of a trajectory y(t) (e.g. a duplicate's fill over snapshots).

Two least-squares fits:

- linear:      y = b0 + b1 * t                           (2 parameters)
- saturating:  y = c + a * (1 - exp(-(t - t0) / tau))   (3 parameters, tau > 0; t0 = min t)

For fixed tau the saturating model is linear in (c, a), so it is fitted by variable
projection: solve (c, a) by least squares on a log-spaced grid of tau (span/1000 .. 1000 *
span), then refine log tau by bounded scalar minimisation around the best grid point. This
cannot fail to converge the way a 3-parameter `curve_fit` can. As tau -> infinity the
saturating curve tends to a straight line, so the lines belong to the saturating family's
closure: its SSE is taken as min(best fit, linear SSE) (then tau = inf), never worse than the
linear one, and the AIC's penalty for the third parameter decides (pure lines: delta_aic = -2).

AIC = N ln(SSE / N) + 2k (Gaussian errors; the shared variance parameter cancels), with SSE
floored at 1e-12 of the total sum of squares so a perfect fit does not give -inf.
`delta_aic` = AIC(linear) - AIC(saturating): positive means the saturating fit is better
(> 2 is the usual "clearly better"; for linear data it sits near -2).

`growth_ratio` = late slope / early slope, each an ordinary least-squares slope of y on t over
the first and last ceil(N/2) points (they share the middle point when N is odd): < 1 means
growth slows. NaN when the early slope is 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import ceil

import numpy as np
from scipy.optimize import minimize_scalar

from harness.stats._validate import as_values

_GRID = 121


@dataclass(frozen=True)
class Saturation:
    sse_linear: float
    sse_saturating: float
    aic_linear: float
    aic_saturating: float
    delta_aic: float  # AIC(linear) - AIC(saturating); > 0: saturating better
    growth_ratio: float  # late / early least-squares slope; < 1: slowing
    intercept: float  # linear fit
    slope: float  # linear fit
    start: float  # c: saturating fit at t0
    ceiling: float  # c + a: the saturating fit's asymptote (NaN for the straight-line limit)
    tau: float  # inf when the straight-line limit fits best
    tau_at_bound: bool  # best grid tau at the grid's edge: the saturating fit is degenerate
    n: int


def _sat_fit(s: np.ndarray, y: np.ndarray, tau: float) -> tuple[float, np.ndarray]:
    design = np.column_stack([np.ones_like(s), -np.expm1(-s / tau)])
    coef, *_ = np.linalg.lstsq(design, y, rcond=None)
    resid = y - design @ coef
    return float(resid @ resid), coef


def _slope(t: np.ndarray, y: np.ndarray) -> float:
    tc = t - t.mean()
    return float(tc @ (y - y.mean()) / (tc @ tc))


def saturation(t, y) -> Saturation:
    """Fit both models to (t, y) and compare them; t need not be evenly spaced."""
    t = as_values(t, "t", min_n=4, hint="a 3-parameter fit needs at least 4 time points")
    y = as_values(y, "y", min_n=4, hint="a 3-parameter fit needs at least 4 time points")
    if t.size != y.size:
        raise ValueError(f"t and y need the same length, got {t.size} and {y.size}")
    order = np.argsort(t, kind="stable")
    t, y = t[order], y[order]
    if np.unique(t).size < 3:
        raise ValueError("t needs at least 3 distinct time points")
    n = t.size
    s = t - t[0]
    span = s[-1]

    coef_lin = np.polyfit(t, y, 1)
    resid = y - np.polyval(coef_lin, t)
    sse_lin = float(resid @ resid)

    grid = np.linspace(np.log(span / 1000), np.log(span * 1000), _GRID)
    sses = np.array([_sat_fit(s, y, np.exp(g))[0] for g in grid])
    best = int(np.argmin(sses))
    lo, hi = grid[max(best - 1, 0)], grid[min(best + 1, _GRID - 1)]
    refined = minimize_scalar(lambda g: _sat_fit(s, y, np.exp(g))[0], bounds=(lo, hi), method="bounded")
    log_tau = refined.x if refined.success and refined.fun <= sses[best] else grid[best]
    sse_sat, (c, a) = _sat_fit(s, y, float(np.exp(log_tau)))
    tau, ceiling = float(np.exp(log_tau)), float(c + a)
    if sse_sat > sse_lin:  # the straight line is the tau -> inf limit, beyond the grid
        sse_sat, tau, c, ceiling = sse_lin, np.inf, float(np.polyval(coef_lin, t[0])), np.nan

    floor = max(1e-12 * float(((y - y.mean()) ** 2).sum()), np.finfo(float).tiny)
    aic_lin = n * np.log(max(sse_lin, floor) / n) + 2 * 2
    aic_sat = n * np.log(max(sse_sat, floor) / n) + 2 * 3

    half = ceil(n / 2)
    early, late = _slope(t[:half], y[:half]), _slope(t[-half:], y[-half:])
    ratio = late / early if early != 0 else np.nan
    return Saturation(
        sse_linear=sse_lin, sse_saturating=sse_sat, aic_linear=float(aic_lin),
        aic_saturating=float(aic_sat), delta_aic=float(aic_lin - aic_sat),
        growth_ratio=float(ratio), intercept=float(coef_lin[1]), slope=float(coef_lin[0]),
        start=float(c), ceiling=ceiling, tau=tau,
        tau_at_bound=best in (0, _GRID - 1),
        n=n,
    )
