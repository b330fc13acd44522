"""`uplab upscale CONFIG OUT`: build the upscale as an HF checkpoint directory."""

from __future__ import annotations

from harness.commands._common import byte_size, checked, report_findings, source_dir
from harness.errors import printable


def register(sub) -> None:
    p = sub.add_parser(
        "upscale",
        help="build an upscaled checkpoint from a mergekit passthrough config",
        description="Build the upscale described by CONFIG into OUT (safetensors, sharded when "
        "large, config.json with the new depth and resized per-layer lists). The native engine "
        "streams tensor by tensor; --engine mergekit runs mergekit's run_merge offline as the "
        "reference. Both give identical tensors. Lint errors stop the build; OUT is written "
        "only when the build completes.",
    )
    p.add_argument("config", help="mergekit YAML (merge_method: passthrough)")
    p.add_argument("out", help="output checkpoint directory (must not exist or be empty)")
    p.add_argument("--engine", choices=("native", "mergekit"), default="native",
                   help="builder (default: native)")
    p.add_argument("--source", help="local source checkpoint, instead of the config's model path")
    p.add_argument("--max-shard-size", type=byte_size, default=byte_size("5GB"),
                   help="largest safetensors shard (default: 5GB)")
    p.add_argument("--force", action="store_true",
                   help="replace OUT if it is an earlier uplab output (never `.`, a folder holding "
                   "the working directory, the source, or a folder holding it)")
    p.add_argument("--allow-nonfinite", action="store_true",
                   help="copy NaN/Inf weights of the source instead of refusing them")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args) -> int:
    from harness import render
    from harness.checkpoint import Checkpoint, check_layers, read_model
    from harness.checkpoint.output import check_out
    from harness.plan import load_plan

    plan = load_plan(args.config)
    src = source_dir(plan, args.source)
    check_out(args.out, force=args.force, protect=(src,))  # before any work: refusals are cheap
    _, facts, depth = read_model(src)
    with Checkpoint(src) as reader:  # headers only: a broken source is one line before any finding
        check_layers(reader.names(), facts, depth, src)
    report_findings(checked(plan, depth, facts.name))
    if args.engine == "native":
        from harness.build.native import upscale_checkpoint
    else:
        from harness.build.reference import upscale_checkpoint
    lm = upscale_checkpoint(src, plan, args.out, force=args.force,
                            max_shard_bytes=args.max_shard_size, progress=not args.quiet,
                            allow_nonfinite=args.allow_nonfinite)
    print(render.summary(lm))
    print(printable(f"wrote {args.out} ({args.engine})"))
    return 0
