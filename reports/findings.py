"""README's findings table, generated from a recorded baseline (`hypotheses/expected/<scale>.json`).

The README holds the table between two marker comments, `<!-- findings:tiny -->` and
`<!-- /findings:tiny -->`; `block(body)` is exactly what belongs between them (a test checks
that it is), `splice(readme, body)` puts it there. Numbers are the baseline's, never typed.
One-sided claims show their one-sided (1 - alpha) bound, equivalence claims the 90 % interval;
exploratory rows carry no adjusted p (they decide nothing).

Several baselines give the claim x scale matrix instead (`matrix`, markers
`<!-- findings:tiny+real -->`): each claim's primary verdict and effect per scale, side by side.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from harness.errors import UplabError
from reports import view

COLUMNS = ("claim", "case", "kind", "test", "verdict", "effect", "bound / interval", "p", "p_adj", "n")


def markers(scale: str) -> tuple[str, str]:
    return f"<!-- findings:{scale} -->", f"<!-- /findings:{scale} -->"


def name(bodies: list[Mapping[str, Any]]) -> str:
    """What a block of these baselines is called: `tiny`, or `tiny+real` for a matrix."""
    return "+".join(str(b["scale"]) for b in bodies)


def load(path: Path) -> dict:
    """A baseline file's body; one UplabError line when it is not one."""
    from harness.claims.baseline import SCHEMA

    path = Path(path)
    try:
        body = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UplabError(f"{path} does not exist; record one with `uplab report DIR --record`") from None
    except (OSError, UnicodeDecodeError) as e:
        raise UplabError(f"cannot read {path}: {e}") from None
    except json.JSONDecodeError as e:
        raise UplabError(f"{path} is not valid JSON ({e.msg} at line {e.lineno}); re-record it with "
                         "`uplab report DIR --record`") from None
    if (not isinstance(body, dict) or body.get("schema") != SCHEMA or not isinstance(body.get("scale"), str)
            or not isinstance(body.get("results"), list)
            or not all(isinstance(r, dict) and isinstance(r.get("claim"), str) for r in body["results"])):
        raise UplabError(f"{path} is not a uplab baseline (schema {SCHEMA!r} with a scale and results); "
                         "re-record it with `uplab report DIR --record`")
    return body


def _as_claim(result: Mapping[str, Any], registry) -> dict[str, Any]:
    """A baseline result in the shape `reports.view` words (a claim with its decision)."""
    decision = dict(result)
    level = result.get("ci_level")
    alpha = (1 - level) / 2 if isinstance(level, (int, float)) and 0 < level < 1 else 0.05
    decision["alpha"] = alpha
    if not decision.get("direction") and registry is not None and result["claim"] in registry.claims:
        entry = registry.entry(result["claim"])
        case = next((c for c in entry.cases if c.case == result.get("case")), entry.primary)
        decision["direction"] = case.direction  # baselines recorded before they kept it
    return {"id": result["claim"], "case": result.get("case") or "", "decision": decision, "alpha": alpha,
            "primary": result.get("primary", True), "units": result.get("units") or "runs (seeds)",
            "sesoi": result.get("sesoi")}


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def table(body: Mapping[str, Any], *, registry=None) -> str:
    """The markdown findings table of one baseline: a caption line, then one row per result
    (primaries first within each claim, as the baseline orders them)."""
    if registry is None:
        from harness.claims.registry import load as load_registry

        registry = load_registry()
    results = list(body["results"])
    n_primary = sum(1 for r in results if r.get("primary", True))
    commit = str(body.get("commit") or "unknown")
    lines = [
        f"Scale `{_cell(body['scale'])}`, recorded from commit `{_cell(commit[:12])}`"
        + (f" ({_cell(body['recorded_at'])})" if body.get("recorded_at") else "")
        + f": {n_primary} primary result{'s' if n_primary != 1 else ''}, Holm-adjusted together; "
        f"{len(results) - n_primary} exploratory (unadjusted, deciding nothing).",
        "",
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "|".join("---" for _ in COLUMNS) + "|",
    ]
    for r in results:
        c = _as_claim(r, registry)
        d = c["decision"]
        primary = c["primary"]
        n = view.n_text(c)
        cells = (f"`{r['claim']}`", r.get("case") or "—", "primary" if primary else "exploratory",
                 d.get("test") or "—", view.verdict_text(c), view.signed(d.get("effect")),
                 view.bound_text(c), view.pval(d.get("p")), view.pval(d.get("p_adj")) if primary else "—", n)
        lines.append("| " + " | ".join(_cell(x) for x in cells) + " |")
    return "\n".join(lines) + "\n"


def matrix(bodies: list[Mapping[str, Any]], *, registry=None) -> str:
    """Markdown: one row per registered claim, one column per baseline's scale, each cell the
    primary's verdict and effect (bound), or why there is none."""
    if registry is None:
        from harness.claims.registry import load as load_registry

        registry = load_registry()
    scales = [str(b["scale"]) for b in bodies]
    if len(set(scales)) != len(scales):
        raise UplabError(f"one baseline per scale, got scales {', '.join(scales)}")
    primaries = [{r["claim"]: r for r in b["results"] if r.get("primary", True)} for b in bodies]
    lines = [
        "Primary results per scale (Holm-adjusted within each scale's family; "
        + "; ".join(f"`{_cell(b['scale'])}` from commit `{_cell(str(b.get('commit') or 'unknown')[:12])}`"
                    for b in bodies) + ").",
        "",
        "| claim | " + " | ".join(f"`{_cell(s)}`" for s in scales) + " |",
        "|---|" + "|".join("---" for _ in scales) + "|",
    ]
    for claim_id, entry in registry.claims.items():
        cells = []
        for scale, found in zip(scales, primaries):
            r = found.get(claim_id)
            if r is None:
                cells.append("not registered at this scale" if scale not in entry.scales else "not run")
                continue
            c = _as_claim(r, registry)
            cells.append(f"{view.verdict_text(c)}: {view.signed(c['decision'].get('effect'))} "
                         f"({view.bound_text(c)}, n {view.n_text(c).split()[0]})")
        lines.append(f"| `{claim_id}` | " + " | ".join(_cell(x) for x in cells) + " |")
    return "\n".join(lines) + "\n"


def block(body: Mapping[str, Any] | list[Mapping[str, Any]], *, registry=None) -> str:
    """The table (one baseline) or the matrix (several) with its markers: what the README holds."""
    bodies = body if isinstance(body, list) else [body]
    start, end = markers(name(bodies))
    text = table(bodies[0], registry=registry) if len(bodies) == 1 else matrix(bodies, registry=registry)
    return f"{start}\n{text}{end}"


def extract(text: str, scale: str) -> str | None:
    """The README's block for `scale` (markers included), or None when it has none."""
    start, end = markers(scale)
    found = re.search(re.escape(start) + r".*?" + re.escape(end), text, flags=re.S)
    return found.group(0) if found else None


def splice(text: str, body: Mapping[str, Any] | list[Mapping[str, Any]], *, registry=None) -> str:
    """`text` (the README) with the block of `body`'s scale (or scales) replaced by a fresh one."""
    scale = name(body if isinstance(body, list) else [body])
    if extract(text, scale) is None:
        start, end = markers(scale)
        raise UplabError(f"no findings block for scale {scale!r}: add the two lines {start} and {end} "
                         "where the table belongs")
    start, end = markers(scale)
    pattern = re.escape(start) + r".*?" + re.escape(end)
    return re.sub(pattern, lambda _: block(body, registry=registry), text, count=1, flags=re.S)
