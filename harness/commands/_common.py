"""Argument helpers shared by the subcommands."""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from harness.commands.argtypes import int_at_least, positive_int  # noqa: F401  (the commands' imports)
from harness.errors import UplabError
from harness.limits import MAX_LAYERS

# checkpoint imports torch (seconds): each command imports what it needs when it runs, so
# `uplab --help`, argument errors and `uplab plan --num-layers N` answer at once.
if TYPE_CHECKING:
    from harness.lint import Finding
    from harness.plan import Plan


def layer_count(text: str) -> int:
    """An argparse type: a depth in [1, MAX_LAYERS] (checked before any per-layer work)."""
    value = positive_int(text)
    if value > MAX_LAYERS:
        raise argparse.ArgumentTypeError(f"expected at most {MAX_LAYERS} layers, got {value}")
    return value


class lazy_choices:
    """argparse choices read from a module only when a command's input or --help needs them
    (give the argument a metavar: argparse lists choices in usage lines otherwise)."""

    def __init__(self, module: str, name: str):
        self.module, self.name = module, name

    def _values(self):
        import importlib

        return getattr(importlib.import_module(self.module), self.name)

    def __contains__(self, item) -> bool:
        return item in self._values()

    def __iter__(self):
        return iter(self._values())


def byte_size(text: str) -> int:
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)i?B?\s*", text, re.I)
    if not m:
        raise argparse.ArgumentTypeError(f"expected a size such as 500MB or 5GB, got {text!r}")
    factor = {"": 1, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}[m.group(2).upper()]
    return int(float(m.group(1)) * factor)


def source_dir(plan: Plan, override: str | None) -> Path:
    """The local checkpoint a plan reads: --source, else the config's own model path."""
    from harness.checkpoint import read_model

    path = Path(override) if override else Path(plan.source_model)
    if not override and not path.is_dir():
        raise UplabError(f"source model {str(path)!r} is not a local checkpoint directory "
                         "(uplab never downloads: pass --source PATH to a local copy)")
    read_model(path)  # names what is missing
    return path


def source_facts(plan: Plan, num_layers: int | None, model_type: str | None,
                 source: str | None) -> tuple[int, str]:
    """Depth and architecture of the source, from flags or from its config.json."""
    from harness.arch import FALLBACK

    if num_layers is not None:  # before importing the checkpoint reader (torch): no weights needed
        return num_layers, model_type or FALLBACK
    from harness.checkpoint import read_model

    path = Path(source) if source else Path(plan.source_model)
    if not (path / "config.json").is_file():
        raise UplabError(
            f"cannot tell the source's depth: {str(path)!r} has no config.json; "
            "pass --num-layers N (or --source PATH to a local checkpoint)"
        )
    _, facts, depth = read_model(path)
    return depth, model_type or facts.name


def report_findings(findings: list[Finding], stream=None) -> None:
    for f in findings:
        print(f, file=stream or sys.stderr)


def checked(plan: Plan, num_layers: int, model_type: str) -> list[Finding]:
    """Lint; errors stop the command with the first one's message."""
    from harness.lint import errors, lint

    findings = lint(plan, num_layers, model_type)
    bad = errors(findings)
    if bad:
        report_findings([f for f in findings if f not in bad])
        more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
        raise UplabError(f"{plan.origin}: {bad[0].message}{more}")
    return findings
