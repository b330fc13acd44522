"""The fill meter: how far a fine-tune has refilled the modules an upscale zeroed, per slice.

The card ends on "saturating these duplicated layers MIGHT be a good goal to pursue"; this is the
gauge a user reads from their own checkpoints (a manifest). For each duplicated slice and each
zeroed module (o_proj, down_proj): the fill ‖W_t‖ / ‖W_source‖ at each snapshot (the mean over the
slice's layers of each copy's fill against the orig copy of its source in the upscaled model, as
`harness.measure.deltas` defines it; 0 at step 0), the rate between snapshots (fill gained per
step), and with 3 snapshots or more (4 points with step 0) the saturating curve of
`harness.stats.saturation` fitted over steps: its ceiling, with a 90 % residual-bootstrap interval
(refits on the fitted curve plus resampled residuals). With n − 3 residual degrees of freedom the
interval is rough, and a ceiling far beyond the last fill is an extrapolation; "none" means a
straight line fits as well (no ceiling in sight).

Steps are the manifest's; without the run's learning-rate schedule a decaying schedule alone
slows growth, which is why `dups_saturate`'s one-run form compares each source's copies with its
own original under the same schedule. This table decides nothing; it is the card's gauge.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from harness.claims.patterns import dup_slices, layer_means
from harness.claims.time import ZEROED
from harness.layermap import LayerMap
from harness.measure.deltas import DeltaRow
from harness.stats import saturation

RESAMPLES = 199
LEVEL = 0.90


@dataclass(frozen=True)
class SliceFill:
    """One duplicated slice and one zeroed module over the snapshots."""

    layers: tuple[int, ...]  # output layers of the slice
    sources: tuple[int, ...]  # the base layers they copy
    module: str
    steps: tuple[int, ...]  # 0 (the upscaled model), then each snapshot's step
    fill: tuple[float, ...]  # per step; 0 at step 0
    ceiling: float | None = None  # the saturating fit's asymptote; None: fewer than 4 points
    ceiling_low: float | None = None
    ceiling_high: float | None = None
    straight: bool = False  # a straight line fits as well: no ceiling in sight

    @property
    def rates(self) -> tuple[float, ...]:
        """Fill gained per step between consecutive points."""
        return tuple((b - a) / (t - s) for s, t, a, b in
                     zip(self.steps, self.steps[1:], self.fill, self.fill[1:]))

    @property
    def name(self) -> str:
        return f"layers {self.layers[0]}-{self.layers[-1]} (copies of {self.sources[0]}-{self.sources[-1]})"


def slice_fills(rows: Sequence[DeltaRow], lm: LayerMap, module: str) -> list[float]:
    """Mean fill of `module` over each duplicated slice's layers (rows from the upscaled model)."""
    fills = layer_means(rows, [module], "fill")
    return [float(np.mean([fills[i] for i in layers])) for layers in dup_slices(lm)]


def _ceiling(steps, fill) -> tuple[float | None, float | None, float | None, bool]:
    t, y = np.asarray(steps, float), np.asarray(fill, float)
    fit = saturation(t, y)
    if not math.isfinite(fit.tau):
        return None, None, None, True
    curve = fit.start + (fit.ceiling - fit.start) * -np.expm1(-(t - t[0]) / fit.tau)
    resid = y - curve
    rng = np.random.default_rng(0)
    draws = []
    for _ in range(RESAMPLES):
        b = saturation(t, curve + rng.choice(resid, size=resid.size, replace=True))
        draws.append(b.ceiling if math.isfinite(b.tau) else math.inf)
    low, high = np.quantile(draws, [(1 - LEVEL) / 2, (1 + LEVEL) / 2])
    return float(fit.ceiling), float(low), float(high), False


def fill_meter(deltas_at: Callable[[int], Sequence[DeltaRow]], steps: Sequence[int],
               lm: LayerMap) -> list[SliceFill]:
    """The meter of one run: `deltas_at(step)` gives the rows from the upscaled model to the
    snapshot at `step` (with the layer map, so fill is defined); `steps` are the snapshots'."""
    slices = dup_slices(lm)
    if not slices:
        raise ValueError("the upscale has no slice of duplicates to meter")
    per_step = [deltas_at(s) for s in steps]
    out = []
    for module in ZEROED:
        series = np.array([slice_fills(rows, lm, module) for rows in per_step])  # step x slice
        for k, layers in enumerate(slices):
            all_steps, fill = (0, *steps), (0.0, *map(float, series[:, k]))
            fit = _ceiling(all_steps, fill) if len(all_steps) >= 4 else (None, None, None, False)
            out.append(SliceFill(tuple(layers), tuple(lm.source_of(i) for i in layers), module,
                                 tuple(all_steps), fill, *fit))
    return out


def manifest_meter(run) -> list[SliceFill]:
    """The meter of a manifest's fine-tune (harness.runs.manifest.ManifestRun), streamed."""
    from harness.claims.lab import deltas

    lm = run.layer_map
    return fill_meter(lambda step: deltas(run, lm, 0, step), run.steps[1:], lm)


def table(meter: Sequence[SliceFill]) -> list[list[str]]:
    """Rows for print and the report: slice, module, fill per step, rate per interval, ceiling [interval]."""
    def ceiling(m: SliceFill) -> str:
        if m.straight:
            return "none (a straight line fits as well)"
        if m.ceiling is None:
            return "needs 3 snapshots"
        return f"{m.ceiling:.3f} [{m.ceiling_low:.3f}, {m.ceiling_high:.3f}]"

    return [[m.name, m.module, " → ".join(f"{f:.3f}" for f in m.fill),
             " → ".join(f"{r:.2e}" for r in m.rates), ceiling(m)] for m in meter]


HEADER = ["slice", "module", "fill at each step", "rate per interval (fill / step)",
          f"ceiling [{LEVEL:.0%} interval]"]


def plot(meter: Sequence[SliceFill]):
    """Fill over steps per slice and module, with each fitted ceiling dashed."""
    from harness.plots import new_figure

    fig = new_figure(6.4, 3.4)
    ax = fig.add_subplot()
    for m in meter:
        line, = ax.plot(m.steps, m.fill, "o-", ms=3, label=f"{m.name}, {m.module}")
        if m.ceiling is not None and math.isfinite(m.ceiling):
            ax.axhline(m.ceiling, color=line.get_color(), lw=0.8, ls="--")
    ax.axhline(1.0, color="grey", lw=0.6, ls=":")
    ax.set_xlabel("step (0: the upscale as built)")
    ax.set_ylabel("fill ‖W‖ / ‖W_source‖")
    ax.set_title("fill of the zeroed modules per duplicated slice (dashed: fitted ceiling; dotted: the source's norm)",
                 fontsize=8)
    ax.legend(fontsize=6)
    return fig
