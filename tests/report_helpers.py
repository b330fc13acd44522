"""Claim records as the plugin writes them (schema uplab-claims/2), for the report's tests.

`primary(...)`/`exploratory(...)` decide per-run effects by a claim's registered case of the
shipped registry, with the protocol the plugin attaches (`fixtures.claim.protocol_of`); a family
of primaries at one scale is Holm-adjusted with `family(...)`, as the plugin does.
"""

from __future__ import annotations

import base64
import dataclasses

from fixtures.claim import protocol_of
from harness.claims.registry import load
from harness.plots import effects_strip, png_bytes
from harness.stats import Decision, adjust, decide, within_run
from reports.records import ClaimRecord

REGISTRY = load()
PROVENANCE = {"git_commit": "0" * 40, "started_at": "2026-01-01T00:00:00+00:00",
              "wall_time_s": 1.5, "devices": ["cpu: test"], "seeds": list(range(12)),
              "runs": ["r1"], "packages": {"numpy": "2.0"}}
POSITIVE = (0.3, 0.2, 0.4, 0.1, 0.3, 0.2, 0.25, 0.35)
MIXED = (0.3, -0.2, 0.1, -0.4, 0.2, -0.1, 0.05, -0.3)


def _plot(effects) -> dict[str, str]:
    return {"per-seed effects": base64.b64encode(png_bytes(effects_strip(list(effects)))).decode()}


def result(claim_id: str, case: str | None = None, effects=POSITIVE, *, scale: str = "tiny",
           decision: Decision | None = None, plots: bool = False, expected: str | None = None,
           plots_extra: dict | None = None, **fields) -> ClaimRecord:
    """One result of `claim_id`'s registered `case` (the primary when None), decided unadjusted
    from `effects` (one per seed) unless `decision` is given; `plots` adds the per-seed strip,
    `plots_extra` more figures by name."""
    entry = REGISTRY.entry(claim_id)
    spec = entry.case(case) if case else entry.primary
    if decision is None:
        decision = decide(list(effects), direction=spec.direction, sesoi=spec.sesoi, test=spec.test)
    per_run = not decision.within_run
    values = dict(
        id=claim_id, scale=scale, statement=entry.statement, method=decision.method,
        expected=expected, decision=decision.to_dict(), case=spec.case,
        nodeid=f"hypotheses/test_{claim_id}.py::test_{claim_id}[{scale}-{spec.case}]",
        direction=spec.direction, sesoi=spec.sesoi, primary=spec.primary,
        protocol=protocol_of(entry, spec), reason=entry.notes.get(scale),
        effects=list(effects) if per_run else None,
        seeds=list(range(len(effects))) if per_run else None, runs=[f"run-{claim_id}"],
        plots={**(_plot(effects) if plots and per_run else {}),
               **{k: base64.b64encode(png_bytes(v)).decode() for k, v in (plots_extra or {}).items()}},
        units=f"{len(effects)} runs (seeds)" if per_run else "12 source layers of one run trained elsewhere",
        outcome="passed: test",
    )
    values.update(fields)
    return ClaimRecord(**values)


def family(records: list[ClaimRecord]) -> list[ClaimRecord]:
    """The primaries of one scale with Holm-adjusted decisions and their family, as the plugin
    records them."""
    decisions = adjust([Decision.from_dict(r.decision) if hasattr(Decision, "from_dict")
                        else _decision(r.decision) for r in records])
    described = {"scale": records[0].scale, "size": len(records), "claims": sorted(r.id for r in records)}
    return [dataclasses.replace(r, decision=d.to_dict(), family=described) for r, d in zip(records, decisions)]


def _decision(data: dict) -> Decision:
    names = {f.name for f in dataclasses.fields(Decision) if f.init}
    out = {k: v for k, v in data.items() if k in names}
    out["values"] = tuple(out.get("values") or ())
    out["ci_low"] = float("-inf") if out.get("ci_low") is None else out["ci_low"]
    out["ci_high"] = float("inf") if out.get("ci_high") is None else out["ci_high"]
    return Decision(**out)


def within(claim_id: str = "dups_more_responsive", scale: str = "full") -> ClaimRecord:
    """A primary decided within one run (12 source layers)."""
    d = within_run([0.5, 0.4, 0.7, 0.6, 0.3, 0.8, 0.5, 0.4, 0.6, 0.7, 0.5, 0.6], direction="greater",
                   sesoi=0.1)
    return result(claim_id, scale=scale, decision=d, effects=(0.0,) * 12)
