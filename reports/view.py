"""What the report shows, computed from a report document: number formats, the claim × scale
matrix, per-claim groups, and the plain-text verdict table for the terminal."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from reports.records import SCALE_ORDER, ClaimRecord

DASH = "—"


def num(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return DASH
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    return f"{value:.{digits}g}"


def signed(value: Any, digits: int = 3) -> str:
    if value is None or not isinstance(value, (int, float)) or isinstance(value, bool):
        return num(value, digits)
    return f"{value:+.{digits}g}"


def pval(value: Any) -> str:
    if value is None or not isinstance(value, (int, float)) or isinstance(value, bool):
        return DASH
    return "<1e-4" if value < 1e-4 else f"{value:.2g}" if value < 0.01 else f"{value:.3f}"


def ci(decision: Mapping[str, Any]) -> str:
    return f"[{signed(decision.get('ci_low'))}, {signed(decision.get('ci_high'))}]"


def label(claim: Mapping[str, Any]) -> str:
    return f"{claim['id']}[{claim['case']}]" if claim.get("case") else claim["id"]


def _scales(claims: list[Mapping[str, Any]]) -> list[str]:
    present = {c["scale"] for c in claims}
    return [s for s in SCALE_ORDER if s in present] + sorted(present - set(SCALE_ORDER))


DECISION_FIELDS = ("verdict", "effect", "ci_low", "ci_high", "p", "p_adj", "n", "method", "within_run",
                   "reason")
PROVENANCE_DEFAULTS = {"git_commit": None, "started_at": None, "wall_time_s": None, "devices": [],
                       "seeds": [], "runs": [], "packages": {}}


def _claim(data: Mapping[str, Any]) -> dict[str, Any]:
    """A claim with every optional field present (defaults filled), as the template expects."""
    claim = ClaimRecord.from_dict(data).to_dict()
    claim["decision"] = {**dict.fromkeys(DECISION_FIELDS), **claim["decision"]}
    return claim


def context(document: Mapping[str, Any]) -> dict[str, Any]:
    """Template variables for index.html."""
    claims = [_claim(c) for c in document["claims"]]
    scales = _scales(claims)
    rows: dict[str, dict[str, Any]] = {}
    groups: dict[str, dict[str, Any]] = {}
    for c in claims:
        row = rows.setdefault(label(c), {"label": label(c), "id": c["id"], "cells": {}})
        row["cells"][c["scale"]] = c
        group = groups.setdefault(c["id"], {"id": c["id"], "statement": c["statement"],
                                            "method": c["method"], "claims": []})
        group["claims"].append(c)
    matched = sum(c["decision"]["verdict"] == c["expected"] for c in claims)
    return {
        "document": document,
        "provenance": {**PROVENANCE_DEFAULTS, **document["provenance"]},
        "claims": claims,
        "scales": scales,
        "matrix": list(rows.values()),
        "groups": list(groups.values()),
        "n_claims": len(claims),
        "skipped": document.get("skipped", []),
        "n_matched": matched,
        "label": label,
        "ci": ci,
    }


def text_table(document: Mapping[str, Any]) -> list[tuple[str, bool]]:
    """Terminal verdict table: (line, as_expected) pairs, header first (flagged True)."""
    header = ("claim", "scale", "expected", "verdict", "Holm", "effect", "CI", "p", "p_adj", "n")
    rows = []
    for c in document["claims"]:
        d = c["decision"]
        adj = c.get("adjusted") or {}
        rows.append(((label(c), c["scale"], c["expected"], d["verdict"], adj.get("verdict") or DASH,
                      signed(d.get("effect")), ci(d), pval(d.get("p")), pval(adj.get("p_adj")),
                      num(d.get("n"))), d["verdict"] == c["expected"]))
    widths = [max(len(str(r[0][i])) for r in [(header, True), *rows]) for i in range(len(header))]

    def fmt(cells):
        return "  ".join(str(v).ljust(w) for v, w in zip(cells, widths)).rstrip()

    return [(fmt(header), True)] + [(fmt(cells), ok) for cells, ok in rows]
