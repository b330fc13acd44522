"""Recorded baselines: what a scale's claims gave last time, machine-written with provenance.

Like a pytest-benchmark baseline: `record(document)` turns a report's `claims.json` into one
baseline per scale (`hypotheses/expected/<scale>.json`): per result (claim, case) its verdict,
effect, interval, p, p_adj, n and run keys, plus the commit, the package versions, the seeds and
the registry's protocol hash of every claim. The plugin compares each new result with it: a
known refutation or inconclusive result becomes an xfail, a changed verdict a failure, and an
effect outside the recorded interval is flagged as "moved" in the report.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import UplabError

SCHEMA = "uplab.baseline/2"  # /2: protocol v2 (two tests, regime checks, placebo, per-seed effects)
DEFAULT_DIR = Path("hypotheses") / "expected"
_KEPT = ("verdict", "effect", "ci_low", "ci_high", "ci_level", "p", "p_adj", "n", "test", "sesoi",
         "direction", "bound", "within_run",  # README findings word the bound
         "p_ref", "p_ref_adj", "level_low", "level_high", "decided_by", "refutation",
         "statistical_verdict", "values")  # protocol v2: both tests, both bounds, per-seed effects


@dataclass(frozen=True)
class Baseline:
    """One scale's recorded results, keyed by (claim id, case)."""

    scale: str
    commit: str
    recorded_at: str
    protocol: Mapping[str, str]  # claim id -> registry protocol hash when recorded
    results: Mapping[tuple[str, str], Mapping[str, Any]]
    path: Path | None = None
    devices: tuple[str, ...] = ()  # what computed it, CPU kernels included (older baselines: none)

    def get(self, claim_id: str, case: str) -> Mapping[str, Any] | None:
        return self.results.get((claim_id, case))

    def compare(self, claim_id: str, case: str, decision: Mapping[str, Any]) -> dict[str, Any] | None:
        """The recorded result beside this one: its numbers, where they came from, and whether
        this effect moved outside the recorded interval. None when nothing was recorded."""
        old = self.get(claim_id, case)
        if old is None:
            return None
        effect, low, high = decision.get("effect"), old.get("ci_low"), old.get("ci_high")
        moved = (None if None in (effect, low, high) else not (low <= effect <= high))
        return {**old, "commit": self.commit, "recorded_at": self.recorded_at,
                "file": str(self.path) if self.path else None, "moved": moved, "devices": list(self.devices)}


def file_stem(scale: str, profile: str | None = None) -> str:
    """A baseline's file name without `.json`: the scale, and at `real` a profile other than the
    nightly CPU one (`real-gpu`, `real-cpu-finer`): other runs, other verdicts, never compared
    with the `cpu` profile's."""
    return scale if profile in (None, "cpu") else f"{scale}-{profile}"


def record(document: Mapping[str, Any], *, registry=None) -> dict[str, dict]:
    """Baselines (file stem -> JSON-ready dict, `file_stem`) from a claim report's document
    (claims.json)."""
    from harness.claims.registry import load

    registry = registry or load()
    prov = document.get("provenance") or {}
    by_scale: dict[str, dict] = {}
    for c in document.get("claims", []):
        scale = c["scale"]
        profile = (prov.get("real_profile") or {}).get("name") if scale == "real" else None
        base = by_scale.setdefault(file_stem(scale, profile), {
            "schema": SCHEMA, "scale": scale, **({"profile": profile} if profile else {}),
            "commit": prov.get("git_commit") or "unknown",
            "recorded_at": prov.get("started_at") or "", "packages": prov.get("packages") or {},
            "devices": prov.get("devices") or [],
            "seeds": c.get("seeds"), "protocol": {}, "results": [],
            "run_kinds": (prov.get("run_kinds") or {}).get(scale) or []})
        if base["seeds"] is None:  # a claim not measured (regime first): the seeds its regime read
            checks = (c.get("regime") or {}).get("checks") or [{}]
            base["seeds"] = c.get("seeds") or checks[0].get("seeds")
        if c["id"] in registry.claims:
            base["protocol"][c["id"]] = registry.entry(c["id"]).protocol_hash
        d = c["decision"]
        base["results"].append({"claim": c["id"], "case": c.get("case", ""), "primary": c.get("primary", True),
                                **{k: d.get(k) for k in _KEPT}, "units": c.get("units", "runs (seeds)"),
                                "runs": c.get("runs", []), "regime": _regime(c.get("regime")),
                                "placebo": _placebo(c.get("placebo")), "notes": c.get("notes") or {}})
    for base in by_scale.values():
        base["results"].sort(key=lambda r: (r["claim"], not r["primary"], r["case"]))
    return by_scale


def _regime(regime: Mapping[str, Any] | None) -> dict | None:
    """A result's regime checks as the baseline keeps them: per check its threshold and values."""
    if not regime:
        return None
    return {"passed": regime.get("passed"), "checks": [
        {k: c.get(k) for k in ("name", "op", "threshold", "values", "seeds_passing", "passed")}
        for c in regime.get("checks", [])]}


def _placebo(placebo: Mapping[str, Any] | None) -> dict | None:
    if not placebo:
        return None
    d = placebo.get("decision") or {}
    return {"verdict": d.get("verdict"), "effect": d.get("effect"), "ci_low": d.get("ci_low"),
            "ci_high": d.get("ci_high"), "values": placebo.get("effects"),
            "control_failed": placebo.get("control_failed")}


def write(baselines: Mapping[str, dict], directory: Path) -> list[Path]:
    """Write each baseline atomically as `<directory>/<file stem>.json` (`record`'s keys)."""
    directory.mkdir(parents=True, exist_ok=True)
    out = []
    for scale, body in sorted(baselines.items()):
        path = directory / f"{scale}.json"
        text = json.dumps(body, indent=1, sort_keys=True, allow_nan=False) + "\n"  # before any file exists
        fd, tmp = tempfile.mkstemp(prefix=f".{scale}.", suffix=".json", dir=directory)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
            os.chmod(tmp, 0o644)
            os.replace(tmp, path)
        except BaseException:  # a full disk or a kill: no .<scale>.XXXX.json left beside the baselines
            Path(tmp).unlink(missing_ok=True)
            raise
        out.append(path)
    return out


def load(directory: Path, scale: str, profile: str | None = None) -> Baseline | None:
    """The baseline recorded for `scale` (at `real`, under `profile`) under `directory`, or None;
    bad files are one line."""
    path = Path(directory) / f"{file_stem(scale, profile)}.json"
    if not path.is_file():
        return None
    try:
        body = json.loads(path.read_text(encoding="utf-8"))
        if body.get("schema") != SCHEMA or body.get("scale") != scale:
            raise ValueError(f"expected schema {SCHEMA!r} for scale {scale!r}")
        if file_stem(scale, body.get("profile")) != file_stem(scale, profile):
            raise ValueError(f"recorded under profile {body.get('profile')!r}, not {profile!r}")
        results = {(r["claim"], r["case"]): {k: r.get(k) for k in (*_KEPT, "primary", "units", "runs",
                                                                   "regime", "placebo", "notes")}
                   for r in body["results"]}
        return Baseline(scale=scale, commit=str(body.get("commit")), recorded_at=str(body.get("recorded_at")),
                        protocol=dict(body.get("protocol") or {}), results=results, path=path,
                        devices=tuple(body.get("devices") or ()))
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise UplabError(f"baseline {path} is not a uplab baseline ({e}); re-record it with "
                         "`uplab report DIR --record`") from None
