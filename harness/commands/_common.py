"""Argument helpers shared by the subcommands."""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from harness import arch as arch_facts
from harness.checkpoint import read_config
from harness.errors import UplabError
from harness.lint import Finding, errors, lint
from harness.plan import Plan


def int_at_least(minimum: int):
    """An argparse type: a whole number >= minimum, with a message naming the bound."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected a whole number >= {minimum}, got {value}")
        return value

    return parse


positive_int = int_at_least(1)


def byte_size(text: str) -> int:
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)i?B?\s*", text, re.I)
    if not m:
        raise argparse.ArgumentTypeError(f"expected a size such as 500MB or 5GB, got {text!r}")
    factor = {"": 1, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}[m.group(2).upper()]
    return int(float(m.group(1)) * factor)


def source_dir(plan: Plan, override: str | None) -> Path:
    """The local checkpoint a plan reads: --source, else the config's own model path."""
    path = Path(override) if override else Path(plan.source_model)
    if not override and not path.is_dir():
        raise UplabError(f"source model {str(path)!r} is not a local checkpoint directory "
                         "(uplab never downloads: pass --source PATH to a local copy)")
    read_config(path)  # names what is missing
    return path


def source_facts(plan: Plan, num_layers: int | None, model_type: str | None,
                 source: str | None) -> tuple[int, str]:
    """Depth and architecture of the source, from flags or from its config.json."""
    if num_layers is not None:
        return num_layers, model_type or "mistral"
    path = Path(source) if source else Path(plan.source_model)
    if not (path / "config.json").is_file():
        raise UplabError(
            f"cannot tell the source's depth: {str(path)!r} has no config.json; "
            "pass --num-layers N (or --source PATH to a local checkpoint)"
        )
    config = read_config(path)
    facts = arch_facts.get(config.get("model_type", "?"))
    return int(config[facts.layers_key]), model_type or facts.name


def report_findings(findings: list[Finding], stream=None) -> None:
    for f in findings:
        print(f, file=stream or sys.stderr)


def checked(plan: Plan, num_layers: int, model_type: str) -> list[Finding]:
    """Lint; errors stop the command with the first one's message."""
    findings = lint(plan, num_layers, model_type)
    bad = errors(findings)
    if bad:
        report_findings([f for f in findings if f not in bad])
        more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
        raise UplabError(f"{plan.origin}: {bad[0].message}{more}")
    return findings
