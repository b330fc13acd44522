"""`uplab report DIR`: rebuild a claim report's index.html from its claims.json;
`uplab report DIR --compare OLD`: compare its verdicts with an earlier report's instead;
`uplab report DIR --record`: record its results as the per-scale baselines;
`uplab report --findings BASELINE... [--readme README.md]`: README's findings table from a baseline,
or the claim x scale matrix of several."""

from __future__ import annotations

import argparse
from pathlib import Path

from harness.errors import UplabError
from reports import CLAIMS_FILE, INDEX_FILE  # reports.build (jinja2, numpy) only when run


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "report",
        usage="%(prog)s [-h] DIR\n       %(prog)s DIR --compare OLD\n"
              "       %(prog)s DIR --record [--baseline-dir DIR]\n"
              "       %(prog)s --findings BASELINE [BASELINE ...] [--readme README]",
        help=f"rebuild a claim report's {INDEX_FILE} from its {CLAIMS_FILE}, or compare verdicts",
        description=(
            f"Re-render DIR/{INDEX_FILE} from DIR/{CLAIMS_FILE}, as written by `pytest "
            "hypotheses/` (into reports/out unless --report-dir says otherwise). Nothing is "
            "rerun: the page shows exactly the recorded claims, Holm-adjusted p-values, plots "
            "and provenance. With --compare, nothing is written: the verdicts of DIR are "
            "compared with OLD's, claim by claim (id, scale, case). With --record, DIR's results "
            "become the baselines (one file per scale: verdicts, effects, intervals, commit, "
            "package versions and the registry's protocol hashes) that later runs are compared "
            "with. With --findings, the README findings table (markdown) of a baseline is printed, "
            "or written between its markers in --readme."
        ),
        epilog="exit status with --compare: 0 no verdict changed and no claim disappeared "
               "(new claims are listed, not failures); 1 otherwise; 2 bad input",
    )
    p.add_argument("dir", metavar="DIR", type=Path, nargs="?",
                   help=f"report directory holding {CLAIMS_FILE} (with --compare: or the file itself)")
    p.add_argument("--compare", metavar="OLD", type=Path,
                   help=f"an earlier {CLAIMS_FILE} (or its directory) to compare DIR's verdicts with")
    p.add_argument("--record", action="store_true",
                   help="write DIR's results as the per-scale baselines into --baseline-dir")
    p.add_argument("--baseline-dir", metavar="DIR", type=Path, default=None,
                   help="where --record writes <scale>.json (default hypotheses/expected)")
    p.add_argument("--findings", metavar="BASELINE", type=Path, nargs="+",
                   help="print the README findings table of a baseline file (hypotheses/expected/<scale>.json); "
                        "several: the claim x scale matrix of their primary verdicts")
    p.add_argument("--readme", metavar="README", type=Path,
                   help="with --findings: replace the block between the README's findings markers instead "
                        "(<!-- findings:tiny -->, or <!-- findings:tiny+real --> for a matrix)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # UplabError -> one line on stderr, exit 2 (harness.cli)
    if args.findings is not None:
        if args.dir is not None or args.compare is not None or args.record:
            raise UplabError("--findings takes baseline files alone: `uplab report --findings BASELINE [BASELINE ...]`")
        return _findings(args.findings, args.readme)
    if args.readme is not None or (args.baseline_dir is not None and not args.record):
        raise UplabError("--readme goes with --findings, --baseline-dir with --record")
    if args.dir is None:
        raise UplabError("give the report directory DIR (or --findings BASELINE)")
    if args.record:
        if args.compare is not None:
            raise UplabError("--record and --compare are separate steps: compare first, then record")
        return _record(args.dir, args.baseline_dir)
    if args.compare is not None:
        from reports import compare

        result = compare.compare(compare.load(args.compare), compare.load(args.dir))
        print("\n".join(compare.text(result, str(args.compare), str(args.dir))))
        return 1 if result.failed else 0
    from reports.build import rebuild

    print(rebuild(args.dir))
    return 0


def _record(report_dir: Path, baseline_dir: Path | None) -> int:
    """Write the per-scale baselines of the report in `report_dir`; prints the files written."""
    from harness.claims import baseline
    from reports.build import load

    document = load(report_dir)
    if not document["claims"]:
        raise UplabError(f"{report_dir / CLAIMS_FILE} holds no claim results: nothing to record")
    directory = baseline_dir if baseline_dir is not None else baseline.DEFAULT_DIR
    try:
        paths = baseline.write(baseline.record(document), Path(directory))
    except OSError as e:
        raise UplabError(f"cannot write baselines into {directory}: {e.strerror}; check the path "
                         "and its permissions") from None
    for path in paths:
        print(path)
    return 0


def _findings(paths: list[Path], readme: Path | None) -> int:
    """Print the findings table of a baseline (the matrix of several), or splice it into `readme`
    between its markers."""
    from reports import findings

    body = findings.load(paths[0]) if len(paths) == 1 else [findings.load(p) for p in paths]
    if readme is None:
        print(findings.block(body))
        return 0
    try:
        text = readme.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise UplabError(f"cannot read {readme}: {e}") from None
    new = findings.splice(text, body)
    if new != text:
        readme.write_text(new, encoding="utf-8")
    print(readme)
    return 0
