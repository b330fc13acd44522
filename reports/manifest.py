"""The head of a manifest's report: the fill meter and the card's heatmaps, from the checkpoints.

What the card's author looked at, made comparable: the fill of the zeroed modules per duplicated
slice (`harness.claims.fill`, a table and a figure), then mean |ΔW| heatmaps (the card's metric)
of the upscale from the upscaled model to each snapshot (Samples A, B, C), between consecutive
snapshots (the rate view), and of each control pair, all on one robust scale per module
(`harness.heatmap.shared_scales`): one large layer 0 no longer washes out the rest, and an
upscale's row reads against a control's row by eye. Nothing here decides a claim.
"""

from __future__ import annotations

import base64
from typing import Any

METRIC = "mean_abs"  # the card's heatmaps: mean |ΔW| per module and layer


def _png(fig) -> str:
    from harness.plots import png_bytes

    return base64.b64encode(png_bytes(fig)).decode("ascii")


def panels(run) -> list[tuple[str, Any, Any]]:
    """(caption, rows, layer map or None) of every heatmap the card drew, in reading order."""
    from harness.claims.lab import deltas

    lm = run.layer_map
    steps = run.steps
    out = [(f"upscaled → step {s}" + (f" (epoch {e})" if e else ""), deltas(run, lm, 0, s), lm)
           for s, (_, e, _) in zip(steps[1:], run.snapshots)]
    out += [(f"step {a} → step {b} (rate)", deltas(run, lm, a, b), lm) for a, b in zip(steps[1:], steps[2:])]
    out += [(f"control {c.name}: base → fine-tuned", deltas(c, None), None) for c in run.controls]
    return out


def section(run) -> dict:
    """The manifest section of the report document: JSON-safe, images as base64 PNG."""
    from harness.claims import fill
    from harness.heatmap import plot_deltas, shared_scales

    meter = fill.manifest_meter(run)
    drawn = panels(run)
    scales = shared_scales([rows for _, rows, _ in drawn], METRIC)
    heatmaps = [{"caption": caption,
                 "png": _png(plot_deltas(rows, metric=METRIC, layer_map=lm, scales=scales,
                                         title=f"mean |ΔW|, {caption}"))}
                for caption, rows, lm in drawn]
    return {"source": str(run.source), "steps": list(run.steps),
            "controls": [c.name for c in run.controls],
            "fill": {"header": list(fill.HEADER), "rows": fill.table(meter), "png": _png(fill.plot(meter))},
            "heatmaps": heatmaps, "scales": scales}
