"""Shared plotting helpers: figures on the Agg canvas, rendered to PNG bytes for the claim report.

Nothing here touches `matplotlib.pyplot` or the global backend: figures are built as
`matplotlib.figure.Figure` with an Agg canvas attached, so they render headless, in threads and
in pytest-xdist workers alike, and need no `plt.close`. Figures made elsewhere with pyplot are
accepted too (`png_bytes` only calls `savefig`).
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
DPI = 100

# Colours of the report: claimed direction, the opposite side, neutral marks.
COLOUR_POINT = "#1f5f8b"
COLOUR_MEAN = "#b03a2e"
COLOUR_SESOI = "#d5d8dc"


def new_figure(width: float = 6.0, height: float = 3.0) -> Figure:
    """A Figure with its own Agg canvas (no pyplot state, nothing to close)."""
    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def png_bytes(image: Figure | bytes | bytearray, *, dpi: int = DPI) -> bytes:
    """PNG bytes of a matplotlib figure, or the given bytes after checking they are a PNG."""
    if isinstance(image, (bytes, bytearray)):
        data = bytes(image)
        if not data.startswith(PNG_MAGIC):
            raise ValueError(
                "plot bytes are not a PNG (missing the PNG signature); pass a matplotlib Figure "
                "or the bytes of a .png file"
            )
        return data
    if not hasattr(image, "savefig"):
        raise TypeError(
            f"a plot must be a matplotlib Figure or PNG bytes, got {type(image).__name__}"
        )
    buf = io.BytesIO()
    # metadata={"Software": None} keeps the bytes free of the matplotlib version string.
    image.savefig(buf, format="png", dpi=dpi, metadata={"Software": None})
    return buf.getvalue()


def effects_strip(
    effects: Sequence[float],
    *,
    seeds: Sequence[int] | None = None,
    direction: str | None = None,
    sesoi: float = 0.0,
    effect: float | None = None,
    ci: tuple[float, float] | None = None,
    title: str | None = None,
    xlabel: str = "per-run effect",
    ci_label: str = "mean, 90% interval (one-sided 95% bounds)",
) -> Figure:
    """Strip plot of per-seed effects: one dot per run, the mean with its interval, zero and ±SESOI.

    `direction` ("greater"/"less") is written in the corner, so the reader sees at a glance
    which side of zero the claim needs. Points are spread vertically by seed order (not random
    jitter), so the same data always gives the same picture.
    """
    values = np.asarray(effects, dtype=float)
    if values.ndim != 1 or values.size == 0:
        raise ValueError(f"effects must be a non-empty 1-D sequence, got shape {values.shape}")
    labels = list(seeds) if seeds is not None else list(range(values.size))
    if len(labels) != values.size:
        raise ValueError(f"{len(labels)} seeds for {values.size} effects; give one seed per effect")

    fig = new_figure(6.0, 1.5 + 0.12 * values.size)
    ax = fig.add_subplot()
    if sesoi > 0:
        ax.axvspan(-sesoi, sesoi, color=COLOUR_SESOI, alpha=0.6, lw=0, label=f"±SESOI ({sesoi:g})")
    ax.axvline(0.0, color="black", lw=0.8)
    y = np.linspace(0.25, 0.95, values.size) if values.size > 1 else np.array([0.6])
    ax.scatter(values, y, s=22, color=COLOUR_POINT, zorder=3, label="one run (seed)")
    if values.size <= 16:
        for xv, yv, lab in zip(values, y, labels):
            ax.annotate(str(lab), (xv, yv), xytext=(4, 0), textcoords="offset points",
                        fontsize=7, va="center", color="#555555")
    centre = float(values.mean()) if effect is None else float(effect)
    if ci is not None and all(c is not None and np.isfinite(c) for c in ci):
        lo, hi = float(ci[0]), float(ci[1])
        ax.errorbar([centre], [0.1], xerr=[[centre - lo], [hi - centre]], fmt="D",
                    color=COLOUR_MEAN, capsize=4, zorder=4, label=ci_label)
    else:
        ax.plot([centre], [0.1], "D", color=COLOUR_MEAN, zorder=4, label="mean")
    ax.set_ylim(0.0, 1.05)
    ax.set_ylabel("runs", fontsize=8)
    ax.set_yticks([])
    ax.set_xlabel(xlabel)
    span = max(float(np.ptp(values)), abs(centre), sesoi, 1e-12)
    lo_x = min(float(values.min()), -sesoi, 0.0) - 0.1 * span
    hi_x = max(float(values.max()), sesoi, 0.0) + 0.1 * span
    ax.set_xlim(lo_x, hi_x)
    claimed = {"greater": "claim: effect > 0", "less": "claim: effect < 0"}.get(direction or "")
    heading = " — ".join(t for t in (title, claimed) if t)
    if heading:
        ax.set_title(heading, fontsize=9)
    fig.legend(loc="outside lower center", ncols=3, fontsize=7, frameon=False)
    return fig
