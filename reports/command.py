"""`uplab report DIR`: rebuild a claim report's index.html from its claims.json."""

from __future__ import annotations

import argparse
from pathlib import Path

from reports.build import CLAIMS_FILE, INDEX_FILE, rebuild


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "report",
        help=f"rebuild a claim report's {INDEX_FILE} from its {CLAIMS_FILE}",
        description=(
            f"Re-render DIR/{INDEX_FILE} from DIR/{CLAIMS_FILE}, as written by `pytest "
            "hypotheses/` (into reports/out unless --report-dir says otherwise). Nothing is "
            "rerun: the page shows exactly the recorded claims, Holm-adjusted p-values, plots "
            "and provenance."
        ),
    )
    p.add_argument("dir", metavar="DIR", type=Path,
                   help=f"report directory holding {CLAIMS_FILE}")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    index = rebuild(args.dir)  # UplabError -> one line on stderr, exit 2 (harness.cli)
    print(index)
    return 0
