"""`uplab report DIR`: rebuild a claim report's index.html from its claims.json;
`uplab report DIR --compare OLD`: compare its verdicts with an earlier report's instead."""

from __future__ import annotations

import argparse
from pathlib import Path

from reports.build import CLAIMS_FILE, INDEX_FILE, rebuild


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "report",
        usage="%(prog)s [-h] DIR\n       %(prog)s DIR --compare OLD",
        help=f"rebuild a claim report's {INDEX_FILE} from its {CLAIMS_FILE}, or compare verdicts",
        description=(
            f"Re-render DIR/{INDEX_FILE} from DIR/{CLAIMS_FILE}, as written by `pytest "
            "hypotheses/` (into reports/out unless --report-dir says otherwise). Nothing is "
            "rerun: the page shows exactly the recorded claims, Holm-adjusted p-values, plots "
            "and provenance. With --compare, nothing is written: the verdicts of DIR are "
            "compared with OLD's, claim by claim (id, scale, case)."
        ),
        epilog="exit status with --compare: 0 no verdict changed and no claim disappeared "
               "(new claims are listed, not failures); 1 otherwise; 2 bad input",
    )
    p.add_argument("dir", metavar="DIR", type=Path,
                   help=f"report directory holding {CLAIMS_FILE} (with --compare: or the file itself)")
    p.add_argument("--compare", metavar="OLD", type=Path,
                   help=f"an earlier {CLAIMS_FILE} (or its directory) to compare DIR's verdicts with")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # UplabError -> one line on stderr, exit 2 (harness.cli)
    if args.compare is not None:
        from reports import compare

        result = compare.compare(compare.load(args.compare), compare.load(args.dir))
        print("\n".join(compare.text(result, str(args.compare), str(args.dir))))
        return 1 if result.failed else 0
    print(rebuild(args.dir))
    return 0
