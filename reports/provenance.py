"""Provenance of a claim report: commit, package versions, device, seeds, runs, wall time.

Collected without importing the heavy packages (versions come from installed metadata) and
without running git (the commit is read from `.git/`), so it is cheap and works anywhere.
"""

from __future__ import annotations

import os
import platform
import sys
from collections.abc import Iterable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from harness.versions import package_versions


def git_commit(start: Path) -> str | None:
    """The commit checked out at or above `start`, read from .git; None outside a repository."""
    for folder in [start, *start.parents]:
        dotgit = folder / ".git"
        if dotgit.exists():
            return _read_head(dotgit)
    return None


def _read_head(dotgit: Path) -> str | None:
    try:
        gitdir = dotgit
        if dotgit.is_file():  # worktree or submodule: "gitdir: <path>"
            text = dotgit.read_text().strip()
            if not text.startswith("gitdir:"):
                return None
            gitdir = (dotgit.parent / text.split(":", 1)[1].strip()).resolve()
        common = gitdir
        if (gitdir / "commondir").is_file():
            common = (gitdir / (gitdir / "commondir").read_text().strip()).resolve()
        head = (gitdir / "HEAD").read_text().strip()
        if not head.startswith("ref:"):
            return head or None  # detached HEAD holds the commit itself
        ref = head.split(":", 1)[1].strip()
        for base in (gitdir, common):
            if (base / ref).is_file():
                return (base / ref).read_text().strip() or None
        packed = common / "packed-refs"
        if packed.is_file():
            for line in packed.read_text().splitlines():
                parts = line.split()
                if len(parts) == 2 and parts[1] == ref:
                    return parts[0]
        return None  # a branch with no commits yet
    except OSError:
        return None


def describe_device() -> str:
    """The compute device this process used: CUDA devices if torch is loaded and sees any."""
    torch = sys.modules.get("torch")
    try:
        if torch is not None and torch.cuda.is_available():
            names = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
            return f"cuda: {len(names)} x {names[0]}" if len(set(names)) == 1 else "cuda: " + ", ".join(names)
    except Exception:  # a broken CUDA setup must not stop the report
        pass
    # the kernels torch picked (AVX2, AVX512, ...): fp32 results of one computation differ
    # between them, and the tiny world's training amplifies such differences (harness.runs.kernels)
    try:
        from harness.runs.kernels import describe

        kernels = f", kernels {describe()}" if torch is not None else ""
    except Exception:  # an old torch without the query
        kernels = ""
    return f"cpu: {platform.machine() or 'unknown'}, {os.cpu_count()} cores{kernels}"


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def collect(
    *,
    root: Path,
    seeds: list[int],
    runs: Iterable[str],
    devices: Iterable[str],
    started_at: str,
    wall_time_s: float,
    **extra: Any,
) -> dict[str, Any]:
    """The provenance block of claims.json; `extra` adds run settings (scale, alpha, args...)."""
    return {
        "git_commit": git_commit(root),
        "started_at": started_at,
        "wall_time_s": round(float(wall_time_s), 3),
        "devices": sorted(set(devices)),
        "seeds": list(seeds),
        "runs": sorted(set(runs)),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": package_versions(),
        **extra,
    }
