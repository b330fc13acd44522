"""`uplab tiny OUT`: save a freshly initialised tiny decoder as an HF checkpoint."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from harness.commands._common import layer_count, lazy_choices, positive_int
from harness.errors import printable


def register(sub) -> None:
    p = sub.add_parser(
        "tiny",
        help="save a tiny random decoder (the `tiny` scale) as an HF checkpoint",
        description="Build a tiny decoder from a preset and a seed (same seed, same weights) and "
        "save it with save_pretrained (safetensors) plus uplab_tiny.json.",
    )
    p.add_argument("out", help="output directory (must not exist or be empty)")
    p.add_argument("--preset", choices=lazy_choices("harness.tiny", "PRESETS"), default="tiny",
                   metavar="PRESET", help="architecture preset: %(choices)s (default: tiny = mistral)")
    p.add_argument("--layers", type=layer_count, help="override the depth")
    p.add_argument("--hidden", type=positive_int, help="override the hidden size")
    p.add_argument("--seed", type=int, default=0, help="initialisation seed (default: 0)")
    p.add_argument("--force", action="store_true", help="replace OUT if it exists")
    p.set_defaults(func=run)


def run(args) -> int:
    from harness import tiny
    from harness.checkpoint import staged_output

    spec = tiny.preset(args.preset)
    if args.layers:
        spec = replace(spec, num_layers=args.layers)
    if args.hidden:
        spec = replace(spec, hidden=args.hidden, intermediate=2 * args.hidden)
    spec.hf_config()  # validate before writing anything
    with staged_output(args.out, force=args.force) as stage:
        tiny.save(spec, args.seed, stage)
    n = sum(p.numel() for p in tiny.build(spec, args.seed).parameters())
    print(printable(f"wrote {Path(args.out)} ({spec.arch}, {spec.num_layers} layers, {n:,} parameters, seed {args.seed})"))
    return 0
