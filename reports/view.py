"""What the report shows, computed from a report document: number formats, the sentences that
go with a verdict (the bound that decided it, what would have refuted it, what an inconclusive
result could have detected), the headline (primary) and exploratory tables, per-claim groups,
and the plain-text verdict table for the terminal.

Wording rules (protocol v2): every result shows both one-sided bounds, each at the level its
(Holm-adjusted) test was judged at, and which bound decided; a refutation says what its test
showed (the opposite direction, or no effect of interest: the mean shown below the sesoi).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping
from typing import Any

from reports.forest import sesoi_of
from harness.stats.decision import LABELS
from reports.records import NOT_IN_REGIME, SCALE_ORDER, ClaimRecord

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
    if isinstance(value, float) and not math.isfinite(value):
        return num(value, digits)
    return "0" if value == 0 else f"{value:+.{digits}g}"


def pval(value: Any) -> str:
    if value is None or not isinstance(value, (int, float)) or isinstance(value, bool):
        return DASH
    return "<1e-4" if value < 1e-4 else f"{value:.2g}" if value < 0.01 else f"{value:.3f}"


def pct(fraction: Any) -> str:
    """0.95 -> "95 %" (as the report writes levels)."""
    if not isinstance(fraction, (int, float)) or isinstance(fraction, bool):
        return DASH
    return f"{100 * fraction:.3g} %"


def ci(decision: Mapping[str, Any]) -> str:
    return f"[{signed(decision.get('ci_low'))}, {signed(decision.get('ci_high'))}]"


def label(claim: Mapping[str, Any]) -> str:
    return f"{claim['id']}[{claim['case']}]" if claim.get("case") else claim["id"]


def is_primary(claim: Mapping[str, Any]) -> bool:
    return claim.get("primary", True) is not False  # older reports had no exploratory results


# -- the test's own terms ----------------------------------------------------------------------

def _alpha(claim: Mapping[str, Any]) -> float:
    a = claim["decision"].get("alpha")
    return a if isinstance(a, (int, float)) and 0 < a < 1 else claim.get("alpha", 0.05)


def test_of(claim: Mapping[str, Any]) -> str:
    return claim["decision"].get("test") or (claim.get("protocol") or {}).get("test") or "superiority"


def direction_of(claim: Mapping[str, Any]) -> str:
    return (claim["decision"].get("direction") or (claim.get("protocol") or {}).get("direction")
            or claim.get("direction") or "greater")


def one_sided_level(claim: Mapping[str, Any]) -> str:
    return pct(1 - _alpha(claim))


def interval_level(claim: Mapping[str, Any]) -> str:
    return pct(1 - 2 * _alpha(claim))


def _level(d: Mapping[str, Any], side: str) -> str:
    level = d.get(f"level_{side}")
    return pct(1 - level) if isinstance(level, (int, float)) else DASH


def bound_text(claim: Mapping[str, Any]) -> str:
    """Both one-sided bounds, each at the (Holm-adjusted) level of the test it inverts, and which
    one decided: "≥ +0.18 (99.6 %), ≤ +0.31 (95 %); lower decided"."""
    d = claim["decision"]
    if d.get("effect") is None and not d.get("n"):  # not measured (regime checked first, `real`)
        return "not measured"
    if "level_low" not in d or d.get("level_low") is None:  # a report from before protocol v2
        return f"{interval_level(claim)} CI {ci(d)}"
    low = f"≥ {signed(d.get('ci_low'))} ({_level(d, 'low')})"
    high = f"≤ {signed(d.get('ci_high'))} ({_level(d, 'high')})"
    decided = d.get("decided_by") or ""
    which = decided.split(" ")[0]
    return f"{low}, {high}" + (f"; {which} decided" if which in ("lower", "upper", "both") else "")


def refuted_if(claim: Mapping[str, Any]) -> str | None:
    """For a supported result: the result that would have refuted it, from the protocol."""
    sesoi = sesoi_of(claim)
    if sesoi is None:
        return None
    test = test_of(claim)
    if test == "equivalence":
        return (f"would have been refuted had the interval been shown outside ±{num(sesoi)} "
                "(a difference of at least the sesoi, Holm-adjusted)")
    greater = direction_of(claim) == "greater"
    floor = sesoi if test == "superiority" else -sesoi  # claimed-direction coordinates
    threshold = floor if greater else -floor
    which, move = ("upper", "fallen below") if greater else ("lower", "risen above")
    return (f"would have been refuted had the {which} bound, at its Holm-adjusted level, "
            f"{move} {signed(threshold)}"
            + (" (the sesoi) while the effect was not shown" if test == "superiority"
               else " (the non-inferiority margin)"))


def refuted_as(claim: Mapping[str, Any]) -> str | None:
    """For a refuted result, what the refutation test showed (the decision says it)."""
    d = claim["decision"]
    return d.get("refutation") or None


def _failed_check(check: Mapping[str, Any]) -> str:
    """A failing regime check with the number that failed: "copies_refilled (0/8 seeds >= 0.3,
    median 0.002)"."""
    values = [v for v in check.get("values") or () if isinstance(v, (int, float))]
    if not values or check.get("threshold") is None:
        return str(check["name"])
    passing = check.get("seeds_passing")
    passing = f"{passing}/{len(check['values'])} seeds" if passing is not None else "seeds"
    return (f"{check['name']} ({passing} {check.get('op', '>=')} {num(check['threshold'])}, "
            f"median {num(float(statistics.median(values)))})")


def verdict_text(claim: Mapping[str, Any]) -> str:
    """The verdict with its qualifier: "refuted: opposite direction", "not in regime: …"."""
    d = claim["decision"]
    verdict = d["verdict"]
    if verdict == NOT_IN_REGIME:
        failing = [_failed_check(c) for c in (claim.get("regime") or {}).get("checks", [])
                   if c.get("passed") is False]
        return f"{verdict}: {'; '.join(failing)}" if failing else verdict
    if verdict == "smaller":
        return LABELS["smaller"]
    why = refuted_as(claim) if verdict == "refuted" else None
    return f"{verdict}: {why}" if why else verdict


def n_text(claim: Mapping[str, Any]) -> str:
    """The effective n with what it counts: "12 runs (seeds)", or for a decision within one run
    "k source layers of one run trained elsewhere". `units` may carry the count itself (as the
    plugin writes it) or only the unit (then the decision's n, or its values, give the count)."""
    d = claim["decision"]
    units = str(claim.get("units") or "runs (seeds)")
    if units[:1].isdigit():
        return units
    if d.get("within_run"):
        k = len(d.get("values") or ()) or None
        units = units if units != "runs (seeds)" else "units"
        return (f"{k} {units} of one run trained elsewhere" if k
                else f"one run trained elsewhere ({units})")
    return f"{num(d.get('n'))} {units}"


def detectable_text(claim: Mapping[str, Any]) -> str | None:
    """For an inconclusive result: its minimum detectable effect and its power at the sesoi."""
    det = claim.get("detectable")
    if not det:
        return None
    target = det.get("target_power", det.get("target"))
    mde, unit = det.get("mde"), det.get("unit") or ""
    # An infinite mde (not reached within 20 SD of the spread) is null in JSON.
    mde_s = ("not reached within 20 SD of the observed spread" if mde is None or
             (isinstance(mde, float) and math.isinf(mde)) else f"{num(mde)} {unit}".rstrip())
    return (f"minimum detectable effect {mde_s}"
            + (f" (at {pct(target)} power)" if isinstance(target, (int, float)) else "")
            + f"; power at the sesoi ({num(sesoi_of(claim))}) {pct(det.get('power_at_sesoi'))}"
            + f", α = {num(det.get('alpha', _alpha(claim)))}")


def seeds_shown(claim: Mapping[str, Any]) -> list | None:
    """The seeds beside per-run effects: only where the effects are one per seed."""
    if claim["decision"].get("within_run") or not claim.get("effects") or not claim.get("seeds"):
        return None
    return claim["seeds"] if len(claim["seeds"]) == len(claim["effects"]) else None


def seeds_used(claims: list[Mapping[str, Any]]) -> list[int]:
    """Seeds that some per-run decision of this report used (within-run decisions use none)."""
    return sorted({s for c in claims for s in (seeds_shown(c) or ())})


# -- the page ------------------------------------------------------------------------------------

def _scales(claims: list[Mapping[str, Any]]) -> list[str]:
    present = {c["scale"] for c in claims}
    return [s for s in SCALE_ORDER if s in present] + sorted(present - set(SCALE_ORDER))


def _scale_rank(scale: str) -> int:
    return SCALE_ORDER.index(scale) if scale in SCALE_ORDER else len(SCALE_ORDER)


DECISION_FIELDS = ("verdict", "effect", "ci_low", "ci_high", "p", "p_adj", "n", "method", "within_run",
                   "reason", "test", "direction", "sesoi", "alpha", "bound", "ci_level", "values",
                   "p_ref", "p_ref_adj", "level_low", "level_high", "decided_by", "label",
                   "refutation", "statistical_verdict")
PROVENANCE_DEFAULTS = {"git_commit": None, "started_at": None, "wall_time_s": None, "devices": [],
                       "seeds": [], "runs": [], "packages": {}, "protocol_deviations": []}
PROTOCOL_FIELDS = ("case", "metric", "unit", "direction", "test", "sesoi", "sesoi_why", "why", "card")


def _claim(data: Mapping[str, Any]) -> dict[str, Any]:
    """A claim with every optional field present (defaults filled), as the template expects."""
    claim = ClaimRecord.from_dict(data).to_dict()
    claim["decision"] = {**dict.fromkeys(DECISION_FIELDS), **claim["decision"]}
    claim["protocol"] = {**dict.fromkeys(PROTOCOL_FIELDS), "controls": [], "notes": {},
                         "deviations": [], **(claim.get("protocol") or {})}
    claim["primary"] = is_primary(claim)
    claim["matched"] = claim["expected"] is None or claim["decision"]["verdict"] == claim["expected"]
    claim["moved"] = bool((claim.get("baseline") or {}).get("moved"))
    return claim


def regime_tables(claims: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Per scale, the regime checks measured for its claims: check, threshold, per-seed values,
    seeds passing, and which claims need it (each check is measured once per scale and seeds)."""
    tables: dict[str, dict[str, dict[str, Any]]] = {}
    for c in claims:
        for check in (c.get("regime") or {}).get("checks", []):
            rows = tables.setdefault(c["scale"], {})
            row = rows.setdefault(check["name"], {**check, "claims": []})
            if c["id"] not in row["claims"]:
                row["claims"].append(c["id"])
    return [{"scale": scale, "checks": list(rows.values())}
            for scale, rows in sorted(tables.items(), key=lambda kv: _scale_rank(kv[0]))]


def placebo_text(claim: Mapping[str, Any]) -> str | None:
    """The placebo beside a claim: its verdict (as if it were the claim), effect and bounds."""
    placebo = claim.get("placebo")
    if not placebo:
        return None
    d = placebo["decision"]
    flag = " — the control FAILS" if placebo.get("control_failed") else ""
    return (f"{d.get('label') or d.get('verdict')}, effect {signed(d.get('effect'))} "
            f"[{signed(d.get('ci_low'))}, {signed(d.get('ci_high'))}]{flag}")


def context(document: Mapping[str, Any]) -> dict[str, Any]:
    """Template variables for index.html."""
    claims = [_claim(c) for c in document["claims"]]
    primaries = sorted((c for c in claims if c["primary"]),
                       key=lambda c: (c["id"], _scale_rank(c["scale"]), c["scale"], c["case"]))
    exploratory = [c for c in claims if not c["primary"]]
    groups: dict[str, dict[str, Any]] = {}
    for c in sorted(claims, key=lambda c: (c["id"], not c["primary"], c["case"], _scale_rank(c["scale"]))):
        group = groups.setdefault(c["id"], {"id": c["id"], "statement": c["statement"],
                                            "method": c["method"], "protocol": None, "claims": []})
        if c["primary"] and group["protocol"] is None:
            group["protocol"] = c["protocol"]
        group["claims"].append(c)
    for group in groups.values():
        # Without a primary result here, the claim-level parts only (card, controls, notes,
        # deviations); each exploratory result shows its own case protocol.
        group["has_primary"] = group["protocol"] is not None
        group["protocol"] = group["protocol"] or group["claims"][0]["protocol"]
    forest = document.get("forest") or {"rows": [], "png": None}
    baselined = [c for c in claims if c["expected"] is not None]
    return {
        "document": document,
        "provenance": {**PROVENANCE_DEFAULTS, **document["provenance"]},
        "claims": claims,
        "primaries": primaries,
        "exploratory": exploratory,
        "scales": _scales(claims),
        "groups": list(groups.values()),
        "forest": forest,
        "n_claims": len(claims),
        "skipped": document.get("skipped", []),
        "n_baselined": len(baselined),
        "n_matched": sum(c["matched"] for c in baselined),
        "n_moved": sum(c["moved"] for c in claims),
        "seeds_used": seeds_used(claims),
        "label": label,
        "ci": ci,
        "bound_text": bound_text,
        "refuted_if": refuted_if,
        "verdict_text": verdict_text,
        "n_text": n_text,
        "detectable_text": detectable_text,
        "placebo_text": placebo_text,
        "regimes": regime_tables(claims),
        "seeds_shown": seeds_shown,
        "one_sided_level": one_sided_level,
        "interval_level": interval_level,
    }


def text_table(document: Mapping[str, Any]) -> list[tuple[str, bool]]:
    """Terminal verdict table: (line, as_recorded) pairs, header first (flagged True).

    Primary rows first (their verdict is the Holm verdict of their scale's family), then the
    exploratory rows, marked "explor." with no p_adj (unadjusted; they decide nothing). A row
    is flagged when a recorded baseline verdict exists and differs.
    """
    header = ("claim", "scale", "kind", "baseline", "verdict", "effect", "bound / interval", "p",
              "p_adj", "n", "family")
    claims = [_claim(c) for c in document["claims"]]
    ordered = sorted(claims, key=lambda c: (not c["primary"], c["id"], _scale_rank(c["scale"]), c["case"]))
    rows = []
    for c in ordered:
        d = c["decision"]
        family = (c.get("family") or {}).get("size")
        moved = " (moved)" if c["moved"] else ""
        rows.append(((label(c), c["scale"], "primary" if c["primary"] else "explor.",
                      c["expected"] or DASH, d["verdict"] + moved, signed(d.get("effect")), bound_text(c),
                      pval(d.get("p")), pval(d.get("p_adj")) if c["primary"] else DASH,
                      n_text(c), num(family) if c["primary"] else DASH), c["matched"]))
    widths = [max(len(str(r[0][i])) for r in [(header, True), *rows]) for i in range(len(header))]

    def fmt(cells):
        return "  ".join(str(v).ljust(w) for v, w in zip(cells, widths)).rstrip()

    return [(fmt(header), True)] + [(fmt(cells), ok) for cells, ok in rows]
