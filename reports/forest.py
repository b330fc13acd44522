"""The forest plot at the top of the claim report: one row per primary result (claim × scale).

Each row is the effect in units of its claim's sesoi, with the two one-sided (1 - alpha) bounds
(the interval the verdict used, 90 % at alpha = 0.05), turned so that the claimed direction is
positive: +1 is "the smallest effect of interest, in the claimed direction", -1 the same the
other way (a non-inferiority claim's margin), and [-1, +1] an equivalence claim's band. So every
claim reads on one axis whatever its unit. Rows are coloured by the (Holm) verdict.

The plot is drawn once, when the report is assembled, and stored in the document beside the
rows it shows (`{"rows": [...], "png": base64}`), so a rebuilt page is byte-identical.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Mapping, Sequence
from typing import Any

from reports.records import SCALE_ORDER

COLOURS = {"supported": "#13653a", "refuted": "#a32020", "inconclusive": "#b08000"}
LIMIT = 6.0  # the axis never spans more than ±LIMIT sesoi: a huge effect must not flatten the rest
TEST_ABBREV = {"superiority": "sup", "non-inferiority": "non-inf", "equivalence": "equiv"}


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def sesoi_of(claim: Mapping[str, Any]) -> float | None:
    """The sesoi the verdict used: the decision's, else the protocol's, else the record's."""
    for value in ((claim.get("decision") or {}).get("sesoi"), (claim.get("protocol") or {}).get("sesoi"),
                  claim.get("sesoi")):
        if _finite(value) and value > 0:
            return float(value)
    return None


def row(claim: Mapping[str, Any]) -> dict[str, Any]:
    """One primary result in sesoi units, claimed direction positive (x/low/high None where the
    numbers or the sesoi are missing)."""
    d = claim.get("decision") or {}
    protocol = claim.get("protocol") or {}
    direction = d.get("direction") or protocol.get("direction") or claim.get("direction") or "greater"
    test = d.get("test") or protocol.get("test") or "superiority"
    sesoi = sesoi_of(claim)
    label = f"{claim['id']}[{claim['case']}]" if claim.get("case") else claim["id"]
    out = {"id": claim["id"], "case": claim.get("case") or "", "scale": claim["scale"], "label": label,
           "verdict": d.get("verdict"), "test": test, "direction": direction, "sesoi": sesoi,
           "x": None, "low": None, "high": None}
    values = (d.get("effect"), d.get("ci_low"), d.get("ci_high"))
    if sesoi is not None and all(_finite(v) for v in values):
        effect, low, high = (float(v) / sesoi for v in values)
        if direction == "less":
            effect, low, high = -effect, -high, -low
        out.update(x=effect, low=low, high=high)
    return out


def rows(claims: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The primary results (a missing `primary` counts as primary), by scale, then claim."""
    primaries = [c for c in claims if c.get("primary", True)]

    def order(r):
        rank = SCALE_ORDER.index(r["scale"]) if r["scale"] in SCALE_ORDER else len(SCALE_ORDER)
        return (rank, r["scale"], r["id"], r["case"])

    return sorted((row(c) for c in primaries), key=order)


def figure(data: Sequence[Mapping[str, Any]]):
    """The forest plot of `rows(...)`: top row first."""
    from matplotlib.lines import Line2D

    from harness.plots import new_figure

    n = len(data)
    fig = new_figure(7.5, 1.3 + 0.3 * n)
    ax = fig.add_subplot()
    finite = [abs(v) for r in data for v in (r["x"], r["low"], r["high"]) if v is not None]
    lim = min(LIMIT, max([2.0, *finite]) * 1.1)
    ax.axvline(0.0, color="black", lw=0.9, zorder=1)
    for edge in (-1.0, 1.0):
        ax.axvline(edge, color="#888888", lw=0.8, ls="--", zorder=1)
    for i, r in enumerate(data):
        y = n - 1 - i
        colour = COLOURS.get(r["verdict"], "#555555")
        if r["test"] == "equivalence":  # this row's claim: the effect lies inside the band
            ax.fill_between([-1.0, 1.0], y - 0.4, y + 0.4, color="#d5d8dc", alpha=0.7, lw=0, zorder=0)
        elif r["test"] == "non-inferiority":  # this row's claim: above the margin at -1
            ax.plot([-1.0, -1.0], [y - 0.4, y + 0.4], color="#444444", lw=2.2, zorder=2)
        if r["x"] is None:
            ax.text(0.0, y, "no interval (missing effect or sesoi)", fontsize=7, va="center",
                    ha="center", color="#555555")
            continue
        low, high = max(r["low"], -lim), min(r["high"], lim)
        ax.plot([low, high], [y, y], color=colour, lw=2.0, zorder=3, solid_capstyle="butt")
        for value, edge, marker in ((r["low"], -lim, "<"), (r["high"], lim, ">")):
            if (value < edge) if marker == "<" else (value > edge):
                ax.plot([edge], [y], marker=marker, color=colour, ms=6, zorder=4)
        ax.plot([min(max(r["x"], -lim), lim)], [y], "o", color=colour, ms=6, zorder=5)
    ax.set_yticks(range(n))
    ax.set_yticklabels([f"{r['label']} · {r['scale']} ({TEST_ABBREV.get(r['test'], r['test'])})"
                        for r in reversed(data)], fontsize=8)
    ax.set_ylim(-0.7, n - 0.3)
    ax.set_xlim(-lim, lim)
    ax.set_xlabel("effect / sesoi (claimed direction positive; dashed: ±1 sesoi)", fontsize=8)
    ax.tick_params(axis="x", labelsize=8)
    handles = [Line2D([0], [0], color=c, marker="o", lw=2, label=v) for v, c in COLOURS.items()]
    fig.legend(handles=handles, loc="outside upper center", ncols=3, fontsize=8, frameon=False)
    return fig


def build(claims: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The document's forest entry: the rows and, when there is any, the PNG (base64)."""
    from harness.plots import png_bytes

    data = rows(claims)
    png = base64.b64encode(png_bytes(figure(data))).decode("ascii") if data else None
    return {"rows": data, "png": png}


def check(forest: Any) -> None:
    """ValueError unless `forest` is a document's forest entry (or absent)."""
    if forest is None:
        return
    if (not isinstance(forest, dict) or not isinstance(forest.get("rows"), list)
            or not all(isinstance(r, dict) and isinstance(r.get("label"), str)
                       and isinstance(r.get("scale"), str) for r in forest["rows"])
            or not (forest.get("png") is None or isinstance(forest["png"], str))):
        raise ValueError("'forest' must be {rows: [{label, scale, ...}], png: base64 string or null}")
