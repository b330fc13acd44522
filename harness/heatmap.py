"""Weight-difference heatmaps (module type × layer), the seed's figure made readable (DESIGN §6).

The seed's complaint: one huge value (usually layer 0) sets the colour scale, and whole rows such
as `input_layernorm` look unchanged. Here each row has its own scale: its maximum, unless some
layers lie beyond Tukey's fence (Q3 + 1.5·IQR of the row): then the largest value inside
it. The colour scale stops at 1 and outliers above it are drawn in a separate colour: they stay visible
without flattening the rest of the row, and a row without outliers has none. Each row's scale is
printed on the right, so rows remain comparable in absolute terms.

With a layer map, a strip above the heatmap colours every layer by role (orig/dup) and vertical
lines mark slice starts. Undefined cells (e.g. `rel` of a zeroed duplicate module) are grey.

Panels meant to be compared by eye (an upscale's snapshots beside ordinary fine-tunes, as the card
compared Samples A-C with its controls) share one robust scale per module (`shared_scales`: the
row rule over every panel's values of that module), passed as `scales=`.

A rate-of-change view is the same picture of snapshot k vs snapshot k+1: `plot_diff` takes any
two snapshots (paths or state dicts), so "epoch 2 vs epoch 1" is `plot_diff(e1, e2)`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

import numpy as np
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib import colormaps

from harness.layermap import LayerMap
from harness.measure.deltas import DeltaMatrix, DeltaRow, Source, pivot, weight_deltas
from harness.plots import new_figure

ROLE_COLOURS = {"orig": "#4c72b0", "dup": "#dd8452"}
OVER, UNDEFINED = "#e8175d", "#d0d0d0"
LABELS = {
    "l2": "‖ΔW‖", "rel": "‖ΔW‖ / ‖W₀‖", "mean_abs": "mean |ΔW|",
    "cos": "1 − cos(W₀, W₁)", "fill": "‖W‖ / ‖W_source‖",
}


def row_scales(values: np.ndarray, fence: float = 1.5) -> np.ndarray:
    """Each row's robust scale: its largest value inside Tukey's fence Q3 + fence·IQR,
    so outlying layers (beyond the fence) do not set it. The IQR counts as at least Q3/10, so a
    row of near-equal values has no "outliers" that differ by a few percent. Undefined cells are
    ignored; a row with nothing above zero gets 1."""
    scales = np.ones(values.shape[0])
    for i, row in enumerate(values):
        finite = row[np.isfinite(row)]
        if finite.size:
            q1, q3 = np.quantile(finite, [0.25, 0.75])
            spread = max(q3 - q1, abs(q3) / 10)
            top = float(finite[finite <= q3 + fence * spread].max())
            scales[i] = top if top > 0 else 1.0
    return scales


def shared_scales(panels: Sequence[Sequence[DeltaRow] | DeltaMatrix], metric: str,
                  fence: float = 1.5) -> dict[str, float]:
    """Per module: one robust scale over every panel's values of that module (`row_scales` of
    them pooled), so that several heatmaps compare by eye and no single layer sets the scale."""
    pooled: dict[str, list[np.ndarray]] = {}
    for panel in panels:
        m = panel if isinstance(panel, DeltaMatrix) else pivot(list(panel), metric)
        for i, module in enumerate(m.modules):
            pooled.setdefault(module, []).append(m.values[i])
    return {module: float(row_scales(np.concatenate(rows)[None, :], fence)[0])
            for module, rows in pooled.items()}


def plot_deltas(
    deltas: Sequence[DeltaRow] | DeltaMatrix,
    *,
    metric: str = "rel",
    layer_map: LayerMap | None = None,
    scale: Literal["row", "global"] = "row",
    fence: float = 1.5,
    title: str | None = None,
    scales: Mapping[str, float] | None = None,
) -> Figure:
    """Heatmap of one metric; `scale="global"` is the seed's single colour scale, for contrast;
    `scales` (module -> scale, e.g. `shared_scales` of several panels) overrides both.

    Rows with no defined cell (e.g. `fill` of modules no duplicate zeroed) are left out.
    """
    m = deltas if isinstance(deltas, DeltaMatrix) else pivot(list(deltas), metric)
    keep = [i for i in range(len(m.modules)) if np.isfinite(m.values[i]).any()] or list(range(len(m.modules)))
    modules, values = [m.modules[i] for i in keep], m.values[keep]
    n_rows, n_layers = len(modules), len(m.layers)
    given = scales
    if given is not None:
        missing = [mod for mod in modules if mod not in given]
        if missing:
            raise ValueError(f"scales gives no scale for modules {missing}")
        scales = np.array([given[mod] for mod in modules], dtype=float)
    elif scale == "row":
        scales = row_scales(values, fence)
    elif scale == "global":
        finite = values[np.isfinite(values)]
        scales = np.full(n_rows, float(finite.max()) if finite.size and finite.max() > 0 else 1.0)
    else:
        raise ValueError(f"scale must be 'row' or 'global', got {scale!r}")
    shown = values / scales[:, None] if n_rows else values

    width = max(7.0, 2.8 + 0.17 * n_layers)
    strip = layer_map is not None
    fig = new_figure(width, 1.6 + 0.34 * max(n_rows, 1) + (0.45 if strip else 0.0))
    grid = fig.add_gridspec(2 if strip else 1, 1, height_ratios=[1, 2.2 * max(n_rows, 1)] if strip else [1])
    ax = fig.add_subplot(grid[-1])

    cmap = colormaps["viridis"].with_extremes(over=OVER, bad=UNDEFINED)
    image = ax.imshow(np.ma.masked_invalid(shown), aspect="auto", cmap=cmap, vmin=0.0, vmax=1.0,
                      interpolation="nearest")
    bar = fig.colorbar(image, ax=ax, extend="max", pad=0.01, fraction=0.03)
    bar.set_label("÷ shared module scale" if given is not None else
                  "÷ row scale" if scale == "row" else "÷ global maximum", fontsize=8)
    bar.ax.tick_params(labelsize=7)

    ax.set_yticks(range(n_rows), modules, fontsize=8)
    small = 7 if n_layers <= 40 else 6
    ax.set_xticks(range(n_layers), [str(i) for i in m.layers], fontsize=small,
                  rotation=90 if n_layers > 30 else 0)
    ax.set_xlim(-0.5, n_layers - 0.5)
    right = ax.secondary_yaxis("right")
    right.set_yticks(range(n_rows), [f"{s:.2g}" for s in scales], fontsize=7)
    right.set_ylabel("scale shared by every panel" if given is not None else
                     "row scale: max inside Q3 + 1.5 IQR" if scale == "row" else "", fontsize=7)
    extras = "   ".join(f"{k}: {v:.3g}" for k, v in m.extras.items() if np.isfinite(v))
    ax.set_xlabel("layer" + (f"\n{extras}" if extras else ""), fontsize=8)

    starts = layer_map.slice_starts() if layer_map is not None else []
    for s in starts:
        ax.axvline(s - 0.5, color="white", lw=1.6)
        ax.axvline(s - 0.5, color="black", lw=0.6, ls="--")
    if strip:
        top = fig.add_subplot(grid[0], sharex=ax)
        codes = np.array([[0 if r == "orig" else 1 for r in layer_map.roles()]])
        top.imshow(codes, aspect="auto", interpolation="nearest", vmin=0, vmax=1,
                   cmap=ListedColormap([ROLE_COLOURS["orig"], ROLE_COLOURS["dup"]]))
        for s in starts:
            top.axvline(s - 0.5, color="black", lw=1.2)
        top.set_yticks([])
        top.tick_params(axis="x", labelbottom=False, length=0)
        top.set_ylabel("role", rotation=0, ha="right", va="center", fontsize=8)
        handles = [Patch(color=c, label=r) for r, c in ROLE_COLOURS.items()]
        handles.append(Patch(color=OVER, label="outlier (> shared scale)" if given is not None else "outlier (> row scale)"))
        if not np.isfinite(values).all():  # a legend entry only for cells that are there
            handles.append(Patch(color=UNDEFINED, label="undefined"))
        top.legend(handles=handles, loc="lower right", bbox_to_anchor=(1.0, 1.0), ncols=4,
                   fontsize=7, frameon=False)
    heading = title or f"{LABELS.get(m.metric, m.metric)} per module and layer"
    fig.suptitle(heading, fontsize=10, x=0.01, ha="left")
    return fig


def plot_diff(a: Source, b: Source, *, metric: str = "rel", layer_map: LayerMap | None = None,
              title: str | None = None, **kwargs) -> Figure:
    """Heatmap of b against a, for any two snapshots (base vs tuned, or epoch 1 vs epoch 2)."""
    rows = weight_deltas(a, b, layer_map=layer_map)
    return plot_deltas(rows, metric=metric, layer_map=layer_map, title=title, **kwargs)
