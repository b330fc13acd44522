"""`uplab` command line: one subcommand per module, each with a `register(subparsers)`."""

from __future__ import annotations

import argparse
import importlib
import sys

from harness.errors import UplabError, printable

# Modules that add a subcommand; each defines register(subparsers) and sets func=run(args) -> int.
COMMANDS = (
    "harness.commands.plan",
    "harness.commands.upscale",
    "harness.commands.strategy",
    "harness.commands.tiny",
    "harness.commands.diff",
    "harness.commands.fill",
    "harness.commands.train",
    "harness.commands.resources",
    "reports.command",
)


class _Parser(argparse.ArgumentParser):
    """Usage errors as one line naming the problem and where to look, like every other error."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {printable(message)} (see `{self.prog} --help`)\n")


def parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="uplab",
        description="Plan, build, measure and report on upscaled (passthrough-merged) LLMs.",
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(name).register(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except UplabError as e:
        print(f"uplab {args.command}: error: {printable(str(e))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as e:  # Ctrl-C, or SIGTERM during a build (checkpoint.output)
        print(f"uplab {args.command}: {getattr(e, 'what', 'interrupted')}", file=sys.stderr)
        return getattr(e, "exit_status", 130)


if __name__ == "__main__":
    sys.exit(main())
