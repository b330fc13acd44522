"""The process every rank of `accelerate launch` runs: one run spec into the cache.

    python -m harness.launch.entry SPEC.json --cache DIR [--quiet]

Every rank trains (FSDP shards the model over them); the main rank alone writes the cache entry
(harness.runs.cache's launched branch). Exit 0 with the entry complete; 2, with one line naming
the problem, on bad input. Launched by harness.launch.run_launched, or by hand as
configs/fsdp.yaml's header shows.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from harness.errors import UplabError
from harness.train import dist


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m harness.launch.entry",
                                description="Train one run spec as a rank of `accelerate launch`.")
    p.add_argument("spec", help="run spec JSON (RunSpec.model_dump_json, or a cache entry's spec.json)")
    p.add_argument("--cache", required=True, help="cache folder the main rank writes the entry into")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--built", help="the spec's upscale, built on disk by the launching process "
                                   "(its base with its plan applied): loaded instead of applying the plan")
    args = p.parse_args(argv)
    where = f"uplab launch [rank {dist.rank()}/{dist.world_size()}]"
    try:
        from harness.runs import RunSpec, get_or_run

        try:
            spec = RunSpec.from_json(Path(args.spec).read_text())
        except OSError as e:
            raise UplabError(f"cannot read run spec {args.spec!r} ({e.strerror})") from None
        except ValueError as e:  # malformed JSON, or a spec that does not validate
            raise UplabError(f"{args.spec} is not a run spec: {str(e).splitlines()[0]}") from None
        if args.built:
            from harness.runs import runner

            runner.PREBUILT[spec.key] = Path(args.built)
        result = get_or_run(spec, Path(args.cache), progress=dist.is_main() and not args.quiet)
    except UplabError as e:
        print(f"{where}: error: {e}", file=sys.stderr)
        return 2
    finally:
        dist.close()
    if dist.is_main():
        print(f"{where}: run {spec.key[:12]} stored in {result.path}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
