"""`uplab fill MANIFEST`: how far a fine-tune has refilled its upscale's zeroed modules, per slice."""

from __future__ import annotations

import argparse

from harness.errors import printable

DESCRIPTION = """\
The fill meter of a manifest's fine-tune (the checkpoints of one upscale trained elsewhere; the
manifest format is in `pytest hypotheses/ --help`, option --checkpoints, and docs/manifest.md).

For each duplicated slice of the upscale and each module the upscale zeroed (o_proj, down_proj):
the fill ||W|| / ||W_source|| at each snapshot (the mean over the slice's layers of each copy's norm
over the norm of its source's orig copy in the upscaled model; 0 at step 0, 1 = as large as the
layer it was copied from), the rate of each interval between snapshots (fill gained per step),
and with 3 snapshots or more a saturating curve fitted over steps: its ceiling with a 90%
residual-bootstrap interval (rough: n - 3 residual degrees of freedom), or "none" when a straight
line fits as well.

The checkpoints are streamed a tensor at a time (memory as `uplab diff`'s). The table decides
nothing; `pytest hypotheses/ --scale full --checkpoints MANIFEST` decides dups_saturate's one-run
form and draws the same meter at the top of its report."""


def register(sub) -> None:
    p = sub.add_parser("fill", help="fill of the zeroed modules per duplicated slice, from a manifest's checkpoints",
                       description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("manifest", metavar="MANIFEST", help="checkpoint manifest (YAML) of one upscale's fine-tune")
    p.set_defaults(func=run)


def format_table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = [header, ["-" * w for w in widths], *rows]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip() for line in lines)


def run(args) -> int:
    from harness.claims import fill
    from harness.runs.manifest import load_manifest

    manifest = load_manifest(args.manifest)
    meter = fill.manifest_meter(manifest)
    print(printable(f"fill of the zeroed modules, {manifest.source.name}: steps {manifest.steps} "
                    f"(0 = {manifest.upscaled.name})"))
    print(format_table(fill.HEADER, fill.table(meter)))
    return 0
