"""The rows a weight diff yields, and their two outputs: a (module × layer) matrix and a tidy CSV."""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from harness.errors import UplabError

METRICS = ("l2", "rel", "mean_abs", "cos", "fill")
CSV_COLUMNS = ("layer", "module") + METRICS


@dataclass(frozen=True)
class DeltaRow:
    """One (layer, module); a metric that is undefined there is None."""

    layer: int | None
    module: str
    l2: float
    rel: float | None
    mean_abs: float
    cos: float | None
    fill: float | None = None
    numel: int | None = None
    norm_base: float | None = None
    norm_tuned: float | None = None

    def get(self, metric: str) -> float | None:
        if metric not in METRICS:
            raise UplabError(f"unknown metric {metric!r}; choose one of {', '.join(METRICS)}")
        return getattr(self, metric)


@dataclass(frozen=True)
class DeltaMatrix:
    """One metric as a (module × layer) array, NaN where undefined; non-layer rows in `extras`."""

    metric: str
    modules: tuple[str, ...]
    layers: tuple[int, ...]
    values: np.ndarray
    extras: dict[str, float]

    def row(self, module: str) -> np.ndarray:
        return self.values[self.modules.index(module)]


def pivot(rows: list[DeltaRow], metric: str = "rel") -> DeltaMatrix:
    """One metric as a (module × layer) matrix: modules in architecture order, every layer 0..L-1."""
    if metric not in METRICS:
        raise UplabError(f"unknown metric {metric!r}; choose one of {', '.join(METRICS)}")
    layer_rows = [r for r in rows if r.layer is not None]
    modules = tuple(dict.fromkeys(r.module for r in layer_rows))  # rows come sorted
    depth = max((r.layer for r in layer_rows), default=-1) + 1
    values = np.full((len(modules), depth), np.nan)
    for r in layer_rows:
        v = getattr(r, metric)
        if v is not None:
            values[modules.index(r.module), r.layer] = v
    extras = {r.module: (math.nan if getattr(r, metric) is None else getattr(r, metric))
              for r in rows if r.layer is None}
    return DeltaMatrix(metric, modules, tuple(range(depth)), values, extras)


def write_csv(rows: list[DeltaRow], path: str | Path) -> None:
    """Tidy CSV: layer (empty for non-layer tensors), module, l2, rel, mean_abs, cos, fill."""
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(CSV_COLUMNS)
        for r in rows:
            w.writerow([_cell(getattr(r, c)) for c in CSV_COLUMNS])


def _cell(v) -> str:
    if v is None:
        return ""
    return repr(v) if isinstance(v, float) else str(v)
