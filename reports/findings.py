"""README's findings table, generated from a recorded baseline (`hypotheses/expected/<scale>.json`).

The README holds the table between two marker comments, `<!-- findings:tiny -->` and
`<!-- /findings:tiny -->`; `block(body)` is exactly what belongs between them (a test checks
that it is), `splice(readme, body)` puts it there. Numbers are the baseline's, never typed.
Every row shows both one-sided bounds at the levels of the (Holm-adjusted) tests they invert and
which one decided, both tests' p-values and the placebo where a claim has one; exploratory rows
carry no adjusted p (they decide nothing). Below the table, the regime checks: per check its
threshold, the seeds passing and the median, and the claims "not in regime" with the number that
failed. A baseline recorded under protocol v1 (`uplab.baseline/1`, archived in
`hypotheses/expected/archive/`) can still be read for the matrix, its column marked so.

Several baselines give the claim x scale matrix instead (`matrix`, markers
`<!-- findings:tiny+real -->`): each claim's primary verdict and effect per scale, side by side.
"""

from __future__ import annotations

import json
import re
import statistics
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from harness.errors import UplabError
from reports import view
from reports.records import NOT_IN_REGIME

COLUMNS = ("claim", "case", "kind", "test", "verdict", "effect", "bounds (level); which decided",
           "p support / refutation", "Holm p support / refutation", "placebo", "n")
OLD_SCHEMAS = ("uplab.baseline/1",)  # protocol v1: one test, bootstrap interval (readable, not recordable)


def markers(scale: str) -> tuple[str, str]:
    return f"<!-- findings:{scale} -->", f"<!-- /findings:{scale} -->"


def _column(body: Mapping[str, Any]) -> str:
    """A baseline's column name: its file stem (the scale; at `real` a profile other than `cpu`
    too: `real-gpu-finer`), `@v1` when it was recorded under protocol v1."""
    from harness.claims.baseline import file_stem

    stem = file_stem(str(body["scale"]), body.get("profile"))
    return stem + ("@v1" if body.get("schema") in OLD_SCHEMAS else "")


def name(bodies: list[Mapping[str, Any]]) -> str:
    """What a block of these baselines is called: `tiny`, `tiny+real` for a matrix, or
    `tiny@v1+tiny` for one scale under the old and the new protocol (what moved)."""
    return "+".join(_column(b) for b in bodies)


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
    if (not isinstance(body, dict) or body.get("schema") not in (SCHEMA, *OLD_SCHEMAS)
            or not isinstance(body.get("scale"), str)
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
    placebo = result.get("placebo")
    return {"id": result["claim"], "case": result.get("case") or "", "decision": decision, "alpha": alpha,
            "primary": result.get("primary", True), "units": result.get("units") or "runs (seeds)",
            "sesoi": result.get("sesoi"), "regime": result.get("regime"),
            "placebo": placebo and {"decision": {**placebo, "label": view.LABELS.get(placebo.get("verdict"))},
                                    "control_failed": placebo.get("control_failed")}}


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
                 view.bound_text(c), f"{view.pval(d.get('p'))} / {view.pval(d.get('p_ref'))}",
                 f"{view.pval(d.get('p_adj'))} / {view.pval(d.get('p_ref_adj'))}" if primary else "—",
                 view.placebo_text(c) or "—", n)
        lines.append("| " + " | ".join(_cell(x) for x in cells) + " |")
    return "\n".join(lines) + "\n" + regime_table(body) + kinds_table(body)


def regime_table(body: Mapping[str, Any]) -> str:
    """The regime checks of a baseline: per check its threshold, seeds passing and median (from
    the primaries' recorded checks), and which primaries are not in regime for want of it."""
    checks: dict[str, dict[str, Any]] = {}
    for r in body["results"]:
        for k in ((r.get("regime") or {}).get("checks") or []):
            row = checks.setdefault(k["name"], {**k, "claims": set()})
            if r.get("primary", True) and r.get("verdict") == NOT_IN_REGIME and k.get("passed") is False:
                row["claims"].add(r["claim"])
    if not checks:
        return ""
    lines = ["", "Regime checks (per seed, on the default fine-tunes; thresholds from the registry):", "",
             "| check | threshold | seeds passing | median | range | primaries not in regime for it |",
             "|---|---|---|---|---|---|"]
    for name, k in checks.items():
        values = [v for v in (k.get("values") or []) if v is not None]
        median = view.num(statistics.median(values) if values else None)
        spread = f"{view.num(min(values))} – {view.num(max(values))}" if values else "not measured"
        lines.append(f"| `{name}` | {k.get('op')} {view.num(k.get('threshold'))} | "
                     f"{k.get('seeds_passing')} / {len(k.get('values') or [])} | {median} | {spread} | "
                     + (", ".join(f"`{c}`" for c in sorted(k["claims"])) or "—") + " |")
    return "\n".join(lines) + "\n"


def kinds_table(body: Mapping[str, Any]) -> str:
    """Per run kind the claims read (harness.claims.kinds): the regime numbers' seeds passing and
    medians, at the registry's thresholds. The checks decide on the default pair only; the other
    kinds are shown so a reader sees which runs reached the regime (a harder arm forgets on
    purpose)."""
    kinds = body.get("run_kinds")
    if not kinds:
        return ""
    if isinstance(kinds, Mapping):
        return f"\nRun kinds: not summarised ({_cell(kinds.get('error'))}).\n"
    names = ("target_learned", "original_kept", "copies_refilled")
    lines = ["", "Regime numbers per run kind (seeds passing / seeds, median; the checks decide on the "
             "default `normal` and `contiguous` runs only):", "",
             "| run kind | " + " | ".join(f"`{n}`" for n in names) + " |", "|---|" + "---|" * len(names)]
    for k in kinds:
        cells = []
        for n in names:
            c = (k.get("checks") or {}).get(n)
            cells.append("—" if c is None else
                         f"{c['passing']} / {len(c['values'])} ({c['op']} {view.num(c['threshold'])}), "
                         f"median {view.num(c['median'])}")
        lines.append(f"| {_cell(k['kind'])} | " + " | ".join(_cell(x) for x in cells) + " |")
    return "\n".join(lines) + "\n"


def matrix(bodies: list[Mapping[str, Any]], *, registry=None) -> str:
    """Markdown: one row per registered claim, one column per baseline's scale, each cell the
    primary's verdict and effect (bound), or why there is none."""
    if registry is None:
        from harness.claims.registry import load as load_registry

        registry = load_registry()
    from harness.claims.baseline import file_stem

    scales = [str(b["scale"]) for b in bodies]
    stems = [file_stem(str(b["scale"]), b.get("profile")) for b in bodies]  # real-gpu-finer: a profile's
    columns = [_column(b) for b in bodies]
    if len(set(columns)) != len(columns):
        raise UplabError(f"one baseline per scale (and protocol), got {', '.join(columns)}")
    moved = len(bodies) == 2 and scales[0] == scales[1]  # one scale: old and new protocol, or two recipes
    primaries = [{r["claim"]: r for r in b["results"] if r.get("primary", True)} for b in bodies]
    def protocol(b) -> str:
        return " (protocol v1: one test, bootstrap bound)" if b.get("schema") in OLD_SCHEMAS else ""

    lines = [
        "Primary results per scale (Holm-adjusted within each scale's family; "
        + "; ".join(f"`{_cell(stem)}` from commit `{_cell(str(b.get('commit') or 'unknown')[:12])}`"
                    + protocol(b) for stem, b in zip(stems, bodies)) + ").",
        "",
        "| claim | " + " | ".join(f"`{_cell(stem)}`" + protocol(b) for stem, b in zip(stems, bodies))
        + (" | moved |" if moved else " |"),
        "|---|" + "|".join("---" for _ in scales) + ("|---|" if moved else "|"),
    ]
    for claim_id, entry in registry.claims.items():
        cells = []
        for scale, found in zip(scales, primaries):
            r = found.get(claim_id)
            if r is None:
                cells.append("not registered at this scale" if scale not in entry.scales else "not run")
                continue
            c = _as_claim(r, registry)
            if c["decision"].get("effect") is None and not c["decision"].get("n"):
                cells.append(f"{view.verdict_text(c)} (not measured)")  # regime checked first
                continue
            cells.append(f"{view.verdict_text(c)}: {view.signed(c['decision'].get('effect'))} "
                         f"({view.bound_text(c)}, n {view.n_text(c).split()[0]})")
        if moved:
            old, new = (found.get(claim_id) for found in primaries)
            cells.append("—" if None in (old, new) or old.get("verdict") == new.get("verdict") else
                         f"{old.get('verdict')} → {new.get('verdict')}")
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
