"""The family of primary results at one scale, decided together with Holm's correction.

Every registered claim at a scale contributes exactly one primary result; the verdict a claim's
test asserts is its Holm-adjusted one, so each primary test needs every other primary's p. A
`Family` computes what is missing itself. Results are shared through a store folder (one JSON
file per claim, written atomically under a per-claim file lock), so pytest-xdist workers split
the work instead of repeating it: each worker walks the claims starting from its own, takes
whatever is free, and only then waits for claims that another worker is computing.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock, Timeout

from harness.claims import NotApplicable
from harness.claims.decide import decide_case
from harness.claims.registry import Registry, load
from harness.errors import UplabError
from harness.stats import Decision, adjust

_INIT = tuple(f.name for f in dataclasses.fields(Decision) if f.init)


def decision_from_dict(data: dict) -> Decision:
    """A Decision read back from `Decision.to_dict()` (derived fields are recomputed; an
    infinite bound, written as null, is read back as infinite)."""
    fields = {k: data[k] for k in _INIT if k in data}
    fields["ci_low"] = float("-inf") if fields.get("ci_low") is None else fields["ci_low"]
    fields["ci_high"] = float("inf") if fields.get("ci_high") is None else fields["ci_high"]
    return Decision(**fields)


@dataclass(frozen=True)
class FamilyResult:
    """Holm-adjusted primary decisions by claim id, and the primaries that could not be decided."""

    scale: str
    decisions: dict[str, Decision]
    not_applicable: dict[str, str]
    untested: tuple[str, ...] = ()  # members not measured (not in regime): counted as p = 1

    @property
    def size(self) -> int:
        return len(self.decisions) + len(self.untested)

    def describe(self) -> dict:
        return {"scale": self.scale, "size": self.size, "claims": sorted(self.decisions),
                "untested": sorted(self.untested), "not_decided": dict(sorted(self.not_applicable.items()))}


class Family:
    """The primaries at one scale for one lab and seed list, shared through `store`."""

    def __init__(self, *, scale: str, lab, seeds: Sequence[int], alpha: float, store: Path,
                 single_run: bool = False, registry: Registry | None = None):
        self.scale, self.lab, self.seeds, self.alpha = scale, lab, list(seeds), alpha
        self.single_run = single_run
        self.registry = registry or load()
        self.store = Path(store) / scale
        self.store.mkdir(parents=True, exist_ok=True)

    @property
    def members(self) -> list[str]:
        return [e.id for e in self.registry.primaries(self.scale)]

    def _path(self, claim_id: str) -> Path:
        return self.store / f"{claim_id}.json"

    def _read(self, claim_id: str) -> dict | None:
        try:
            return json.loads(self._path(claim_id).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None

    def _write(self, claim_id: str, body: dict) -> None:
        fd, tmp = tempfile.mkstemp(prefix=f".{claim_id}.", dir=self.store)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(body, f)
        os.replace(tmp, self._path(claim_id))

    def put(self, claim_id: str, decision: Decision) -> None:
        """Store a primary decided by its own test (so the family need not measure it again)."""
        with FileLock(str(self._path(claim_id)) + ".lock"):
            if self._read(claim_id) is None:
                self._write(claim_id, {"status": "decided", "decision": decision.to_dict()})

    def _compute(self, claim_id: str) -> dict:
        from harness.claims.measures import measure_once

        entry = self.registry.entry(claim_id)
        try:
            if getattr(self.lab, "regime_first", False):
                from harness.claims.regime import regime_of

                regime = regime_of(self.lab, entry, self.registry, self.seeds)
                if regime.passed is False:  # never measured (fixtures/claim.py): p = 1 in Holm
                    return {"status": "untested", "reason": f"not in regime: {regime.summary()}"}
            measured = measure_once(self.lab, claim_id, self.seeds, entry.primary.case)
            decision = decide_case(entry.primary, measured, alpha=self.alpha, single_run=self.single_run)
        except NotApplicable as e:
            return {"status": "not_applicable", "reason": str(e)}
        except Exception as e:  # noqa: BLE001 - recorded, then raised in every test that needs it
            where = traceback.extract_tb(e.__traceback__)[-1]
            return {"status": "error", "error": f"{type(e).__name__}: {e} "
                                                f"({Path(where.filename).name}:{where.lineno})"}
        return {"status": "decided", "decision": decision.to_dict()}

    def _ensure(self, claim_id: str, *, wait: bool) -> bool:
        """Compute `claim_id` unless stored; False when another process holds it and not `wait`."""
        if self._read(claim_id) is not None:
            return True
        lock = FileLock(str(self._path(claim_id)) + ".lock")
        try:
            lock.acquire(timeout=-1 if wait else 0)
        except Timeout:
            return False
        try:
            if self._read(claim_id) is None:
                self._write(claim_id, self._compute(claim_id))
        finally:
            lock.release()
        return True

    def result(self, first: str | None = None) -> FamilyResult:
        """Every primary at this scale, Holm-adjusted; starts with `first` (the asking claim)."""
        members = self.members
        start = members.index(first) if first in members else 0
        pending = members[start:] + members[:start]
        pending = [c for c in pending if not self._ensure(c, wait=False)]
        for claim_id in pending:  # held by other workers: wait for them
            self._ensure(claim_id, wait=True)
        bodies = {c: self._read(c) for c in members}
        errors = {c: b["error"] for c, b in bodies.items() if b["status"] == "error"}
        if errors:
            raise UplabError(f"the Holm family at {self.scale} is incomplete: the primary of "
                             + "; ".join(f"{c} failed ({e})" for c, e in sorted(errors.items())))
        decided = {c: decision_from_dict(b["decision"]) for c, b in bodies.items() if b["status"] == "decided"}
        skipped = {c: b["reason"] for c, b in bodies.items() if b["status"] == "not_applicable"}
        untested = tuple(sorted(c for c, b in bodies.items() if b["status"] == "untested"))
        ids = sorted(decided)
        adjusted = dict(zip(ids, adjust([decided[c] for c in ids], untested=len(untested))))
        return FamilyResult(self.scale, adjusted, skipped, untested)
