"""`uplab strategy NAME ...`: print the mergekit YAML of an upscale strategy."""

from __future__ import annotations

from harness.commands._common import int_at_least, layer_count, positive_int


_nonneg = int_at_least(0)


def register(sub) -> None:
    p = sub.add_parser(
        "strategy",
        help="print the mergekit YAML of an upscale strategy",
        description="Write a mergekit passthrough config whose duplicates have o_proj and "
        "down_proj scaled to 0 (identity at init). Ranges are half-open [start, end).",
    )
    kinds = p.add_subparsers(dest="strategy", required=True, metavar="NAME")

    def common(q):
        q.add_argument("--num-layers", type=layer_count, required=True,
                       help="depth of the source model")
        q.add_argument("--model", default="base", help="model path written into the YAML "
                       "(default: base)")
        q.add_argument("-o", "--output", help="write the YAML here instead of stdout")
        q.add_argument("--force", action="store_true", help="replace the --output file if it exists")
        q.set_defaults(func=run)

    def ranged(q, copies):
        q.add_argument("--start", type=_nonneg, required=True, help="first layer to duplicate")
        q.add_argument("--end", type=positive_int, required=True, help="one past the last")
        q.add_argument("--copies", type=positive_int, default=copies,
                       help=f"zeroed copies of each duplicated layer (default: {copies})")

    q = kinds.add_parser("contiguous", help="the 39B layout: originals, then copies of [start, end)")
    ranged(q, 2)
    common(q)
    q = kinds.add_parser("interleaved", help="each layer of [start, end) followed by its copies")
    ranged(q, 2)
    common(q)
    q = kinds.add_parser("block", help="each block of k layers followed by its copies")
    q.add_argument("--k", type=positive_int, required=True, help="block size")
    ranged(q, 1)
    common(q)
    q = kinds.add_parser("single", help="one layer followed by its copies")
    q.add_argument("--layer", type=_nonneg, required=True, help="the layer to duplicate")
    q.add_argument("--copies", type=positive_int, default=1, help="copies (default: 1)")
    common(q)
    q = kinds.add_parser("every", help="LLaMA Pro: a zeroed copy after every n layers")
    q.add_argument("--n", type=positive_int, required=True, help="group size")
    common(q)


def run(args) -> int:
    from harness import strategies

    kw = {"num_layers": args.num_layers, "model": args.model}
    if args.strategy == "every":
        plan = strategies.every(args.n, **kw)
    elif args.strategy == "single":
        plan = strategies.single(args.layer, copies=args.copies, **kw)
    elif args.strategy == "block":
        plan = strategies.block(args.k, args.start, args.end, copies=args.copies, **kw)
    else:
        plan = strategies.STRATEGIES[args.strategy](args.start, args.end, copies=args.copies, **kw)
    if args.output:
        from harness.checkpoint.output import write_file

        write_file(args.output, plan.text, force=args.force)
    else:
        print(plan.text, end="")
    return 0
