"""Build the claim report: `claims.json` (the data) and a self-contained `index.html` (the view).

`claims.json` holds everything the page shows, plots included (base64 PNG), so `rebuild(dir)`
reproduces `index.html` byte for byte without rerunning anything. Holm's correction is not
applied here: the plugin decided each primary result within its scale's family of primaries
(a primary's `decision` is the Holm decision), and exploratory results stay unadjusted. The
forest plot of the primaries is drawn once, when the document is assembled, and stored in it.

Both files are written atomically (temporary file in the same folder, then `os.replace`), so
a reader never sees half a report.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import jinja2

from harness.errors import UplabError
from reports import CLAIMS_FILE, INDEX_FILE, forest, view
from reports.records import ClaimRecord, sort_key

SCHEMA = "uplab-claims/2"  # /2: primary, protocol, family, baseline; Holm per scale, no "adjusted"

_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("reports", "templates"),
    autoescape=jinja2.select_autoescape(["html", "j2"], default_for_string=True),
    undefined=jinja2.StrictUndefined,
    keep_trailing_newline=True,
    trim_blocks=True,
    lstrip_blocks=True,
)
_ENV.filters.update(num=view.num, pval=view.pval, signed=view.signed)


def assemble(records: Iterable[ClaimRecord | Mapping[str, Any]], provenance: Mapping[str, Any],
             skipped: Iterable[Mapping[str, str]] = ()) -> dict:
    """The report document: records deduplicated and sorted (as decided: no adjustment here),
    the forest plot of the primary results, and `skipped` ({"test", "reason"} of claim tests
    that did not run) grouped by reason, so that no claim leaves the report silently."""
    latest: dict[tuple, ClaimRecord] = {}
    for rec in records:
        rec = rec if isinstance(rec, ClaimRecord) else ClaimRecord.from_dict(rec)
        latest[rec.key] = rec  # a rerun of the same test replaces the earlier record
    claims = [rec.to_dict() for rec in sorted(latest.values(), key=sort_key)]
    by_reason: dict[str, set[str]] = {}
    for s in skipped:
        by_reason.setdefault(s["reason"], set()).add(s["test"])
    groups = [{"reason": r, "tests": sorted(t)} for r, t in sorted(by_reason.items())]
    # Round-trip through JSON so the document is exactly what claims.json will hold.
    claims = json.loads(json.dumps(claims, allow_nan=False))
    return json.loads(json.dumps({"schema": SCHEMA, "provenance": dict(provenance), "claims": claims,
                                  "forest": forest.build(claims), "skipped": groups}, allow_nan=False))


def render(document: Mapping[str, Any]) -> str:
    """index.html for a report document (as assembled, or as loaded from claims.json)."""
    return _ENV.get_template("index.html.j2").render(**view.context(document))


def write_document(document: Mapping[str, Any], report_dir: Path) -> Path:
    """Write claims.json and index.html into `report_dir`; returns the index.html path."""
    report_dir = Path(report_dir)
    report_dir.mkdir(parents=True, exist_ok=True)
    _atomic_write(report_dir / CLAIMS_FILE,
                  json.dumps(document, indent=1, sort_keys=False, allow_nan=False) + "\n")
    index = report_dir / INDEX_FILE
    _atomic_write(index, render(document))
    return index


def write_report(records: Iterable[ClaimRecord | Mapping[str, Any]], report_dir: Path,
                 provenance: Mapping[str, Any]) -> Path:
    """Assemble and write the report; returns the index.html path."""
    return write_document(assemble(records, provenance), report_dir)


def load(report_dir: Path) -> dict:
    """The document in `report_dir`/claims.json, validated; UplabError names what is wrong."""
    report_dir = Path(report_dir)
    if not report_dir.is_dir():
        raise UplabError(
            f"{report_dir} is not a directory; give the report directory that pytest printed "
            f"(it holds {CLAIMS_FILE})"
        )
    path = report_dir / CLAIMS_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UplabError(
            f"no {CLAIMS_FILE} in {report_dir}; run `pytest hypotheses/` to write one, or give "
            "the directory that holds it"
        ) from None
    except (OSError, UnicodeDecodeError) as e:
        raise UplabError(f"cannot read {path}: {e}; check the file's permissions") from None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as e:
        raise UplabError(
            f"{path} is not valid JSON ({e.msg} at line {e.lineno}, column {e.colno}); "
            "rerun `pytest hypotheses/` to write it again"
        ) from None
    try:
        _validate(document)
    except ValueError as e:
        raise UplabError(f"{path}: {e}; rerun `pytest hypotheses/` to write it again") from None
    return document


def _validate(document: Any) -> None:
    if not isinstance(document, dict):
        raise ValueError("top level must be an object")
    if document.get("schema") != SCHEMA:
        raise ValueError(f"schema is {document.get('schema')!r}, expected {SCHEMA!r}")
    if not isinstance(document.get("provenance"), dict):
        raise ValueError("'provenance' must be an object")
    claims = document.get("claims")
    if not isinstance(claims, list):
        raise ValueError("'claims' must be a list")
    skipped = document.get("skipped", [])  # absent in reports written before it existed
    if not isinstance(skipped, list) or not all(
            isinstance(s, dict) and isinstance(s.get("reason"), str) and isinstance(s.get("tests"), list)
            for s in skipped):
        raise ValueError("'skipped' must be a list of {reason, tests}")
    for i, claim in enumerate(claims):
        try:
            ClaimRecord.from_dict(claim)
        except (ValueError, TypeError) as e:
            raise ValueError(f"claim {i}: {e}") from None
    forest.check(document.get("forest"))


def rebuild(report_dir: Path) -> Path:
    """Re-render index.html from claims.json alone; returns the index.html path."""
    document = load(report_dir)
    index = Path(report_dir) / INDEX_FILE
    try:
        _atomic_write(index, render(document))
    except OSError as e:
        raise UplabError(f"cannot write {index}: {e.strerror}; check space and permissions") from None
    return index


def _atomic_write(path: Path, text: str) -> None:
    """Write to a temporary file beside `path`, then rename over it: all or nothing."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
