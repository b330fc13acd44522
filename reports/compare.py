"""Compare two claim reports' verdicts: what changed, appeared or disappeared since OLD.

Claims are matched by (id, scale, case); a claim recorded by two tests under one key also
carries its nodeid. The verdict compared is the record's `decision.verdict`: for a primary result
(uplab-claims/2) the Holm verdict within its scale's registered family of primaries, which is
what the claim test asserts; for an exploratory result its unadjusted verdict (marked
"exploratory" in the tables); in older reports (uplab-claims/1, no `primary` field: read as
primary) the per-test verdict. Only the fields compared are checked, so a report written by an
older or newer uplab still compares.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import UplabError, printable
from reports.build import CLAIMS_FILE
from reports.records import VERDICTS

Key = tuple[str, ...]


@dataclass(frozen=True)
class Comparison:
    changed: list[tuple[Key, dict, dict]]  # (key, old claim, new claim)
    appeared: list[tuple[Key, dict]]
    disappeared: list[tuple[Key, dict]]
    unchanged: int

    @property
    def failed(self) -> bool:
        """A verdict moved or a claim went missing; a new claim alone is no failure."""
        return bool(self.changed or self.disappeared)


def load(path: Path) -> list[dict]:
    """The claims of a claims.json (or of the report directory holding one)."""
    path = Path(path)
    file = path / CLAIMS_FILE if path.is_dir() else path
    try:
        document = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UplabError(f"{file} does not exist; give a {CLAIMS_FILE} or the report directory "
                         "that holds one") from None
    except (OSError, UnicodeDecodeError) as e:
        raise UplabError(f"cannot read {file}: {e}") from None
    except json.JSONDecodeError as e:
        raise UplabError(f"{file} is not valid JSON ({e.msg} at line {e.lineno}, column {e.colno}); "
                         f"give a {CLAIMS_FILE} written by `pytest hypotheses/`") from None
    try:
        return _claims(document)
    except ValueError as e:
        raise UplabError(f"{file} is not a uplab {CLAIMS_FILE}: {e}") from None


def _claims(document: Any) -> list[dict]:
    if not isinstance(document, dict) or not str(document.get("schema", "")).startswith("uplab-claims/"):
        raise ValueError("no 'schema': 'uplab-claims/...' at its top level")
    claims = document.get("claims")
    if not isinstance(claims, list):
        raise ValueError("'claims' must be a list")
    for i, claim in enumerate(claims):
        if not isinstance(claim, dict) or not all(isinstance(claim.get(f), str) for f in ("id", "scale")):
            raise ValueError(f"claim {i} lacks a string 'id' and 'scale'")
        decision = claim.get("decision")
        if not isinstance(decision, dict) or decision.get("verdict") not in VERDICTS:
            raise ValueError(f"claim {i} ({claim['id']}) has no decision.verdict in {VERDICTS}")
        for name, kinds, what in _OPTIONAL:
            value = claim.get(name)
            if value is not None and not isinstance(value, kinds):
                raise ValueError(f"claim {i} ({claim['id']!r}): '{name}' must be {what}, "
                                 f"got {type(value).__name__}")
    return claims


# fields a claim may omit; when present they must have these types (checked so that a hand-edited
# file is one error line, never a traceback halfway through the table)
_OPTIONAL = (("case", str, "a string"), ("nodeid", str, "a string"), ("expected", str, "a string"),
             ("primary", bool, "true or false"),
             ("runs", list, "a list"), ("seeds", list, "a list"), ("effects", list, "a list"))



def keyed(claims: list[dict]) -> dict[Key, dict]:
    base = [(c["id"], c["scale"], c.get("case") or "") for c in claims]
    counts = Counter(base)
    return {k + ((c.get("nodeid", ""),) if counts[k] > 1 else ()): c for k, c in zip(base, claims)}


def compare(old: list[dict], new: list[dict]) -> Comparison:
    before, after = keyed(old), keyed(new)
    both = [k for k in after if k in before]
    changed = [(k, before[k], after[k]) for k in both if _verdict(before[k]) != _verdict(after[k])]
    return Comparison(
        changed=sorted(changed),
        appeared=sorted((k, after[k]) for k in after if k not in before),
        disappeared=sorted((k, before[k]) for k in before if k not in after),
        unchanged=len(both) - len(changed),
    )


def _verdict(claim: dict) -> str:
    return claim["decision"]["verdict"]


def _name(key: Key, claim: dict) -> str:
    """The claim column: id, the nodeid where two tests share a key, "exploratory" where so."""
    name = key[0] + (f" ({key[3]})" if len(key) > 3 else "")
    return name + (" [exploratory]" if claim.get("primary", True) is False else "")


def text(result: Comparison, old_name: str, new_name: str) -> list[str]:
    """A plain-text report: one aligned table per kind of difference, then a summary line."""
    lines = [f"verdicts of {printable(new_name)} against {printable(old_name)}"]
    sections = [
        ("verdict changed", ["old", "new", "expected"],
         [(k, n, [_verdict(o), _verdict(n), n.get("expected") or "-"]) for k, o, n in result.changed]),
        ("disappeared", ["old verdict"], [(k, o, [_verdict(o)]) for k, o in result.disappeared]),
        ("appeared (not a failure)", ["new verdict"], [(k, n, [_verdict(n)]) for k, n in result.appeared]),
    ]
    for title, columns, rows in sections:
        if not rows:
            continue
        table = [["claim", "scale", "case", *columns]]
        table += [[printable(c) for c in (_name(k, claim), k[1], k[2] or "-", *cells)]
                  for k, claim, cells in rows]
        widths = [max(len(r[i]) for r in table) for i in range(len(table[0]))]
        lines += ["", f"{title} ({len(rows)}):"]
        lines += ["  " + "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in table]
    lines += ["", f"{len(result.changed)} changed, {len(result.disappeared)} disappeared, "
                  f"{len(result.appeared)} appeared, {result.unchanged} unchanged: "
                  + ("FAILED" if result.failed else "ok")]
    return lines
