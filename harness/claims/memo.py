"""Probe results and weight deltas kept on disk beside the runs they read, so a warm session
does not compute them again.

A measure that skips or resets layers of a finished run and scores the held-out sets computes
numbers that depend only on the run's snapshot, the probe and the scoring code. A warm session
(every run cached) spent most of its time recomputing them (a profile of the tiny suite: 45 % of
a warm session in held-out evaluations of probed models), so they are stored as JSON under
`<run cache>/probes/<run key>/<digest>.json`, the digest naming the probe (`what`), SCHEMA and
the torch version. Only runs that live in a suite's cache (a COMPLETE entry) are memoised; a
checkpoint trained elsewhere is probed afresh each time. A stored value is the JSON round trip
of the computed one: Python floats survive it bit for bit.

Weight deltas between two snapshots (`harness.claims.lab.deltas`) are kept the same way: they
were the next 20 % of a warm session.

Bump SCHEMA when the scoring (harness.train.evaluate), a probe (harness.measure.probes, the
reset in harness.claims.function) or the weight deltas (harness.measure.deltas) change what they
compute.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

SCHEMA = "uplab.probe/1"


def _path(run, what: Sequence) -> Path | None:
    if getattr(run, "path", None) is None:
        return None  # a stand-in run, not a cache entry
    entry = Path(run.path)
    if not (entry / "COMPLETE").is_file():
        return None
    digest = hashlib.sha256(json.dumps([SCHEMA, torch.__version__, list(what)]).encode()).hexdigest()
    return entry.parent / "probes" / entry.name / f"{digest[:32]}.json"


def stored(run, what: Sequence, compute: Callable[[], Any]) -> Any:
    """`compute()` for this run and probe, read back when a session stored it before."""
    path = _path(run, what)
    if path is not None and path.is_file():
        try:
            return json.loads(path.read_text())["value"]
        except (OSError, ValueError, KeyError):
            pass  # a torn or foreign file: compute again and overwrite it
    value = compute()
    if path is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
            with os.fdopen(fd, "w") as f:
                json.dump({"what": list(what), "value": value}, f)
            os.replace(tmp, path)
        except OSError:
            pass  # a read-only or full cache: the value is still right, only not kept
    return value
