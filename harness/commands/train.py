"""`uplab train`: run (or fetch from the cache) one training run and print its held-out scores."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from harness.commands._common import positive_int
from harness.data import DataSpec, Local
from harness.errors import UplabError


def layer_list(text: str) -> tuple[int, ...]:
    """'0,1,4-6' -> (0, 1, 4, 5, 6)."""
    out: list[int] = []
    try:
        for part in filter(None, text.split(",")):
            a, _, b = part.partition("-")
            out += range(int(a), int(b or a) + 1)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected layers like 0,1,4-6, got {text!r}") from None
    return tuple(out)


def register(sub) -> None:
    p = sub.add_parser(
        "train",
        help="fine-tune (or pre-train) a model through the run cache",
        description="Train one run spec and store it in the cache (snapshots as safetensors, "
        "metrics.json, spec.json); a finished run is reused. The base is a tiny preset "
        "pre-trained on the original domain (itself cached), or a local checkpoint. "
        "Example: uplab train --plan dup.yml --mode lora --lora-r 8 --base-seed 3",
    )
    base = p.add_mutually_exclusive_group()
    base.add_argument("--base-seed", type=int, default=0, help="tiny base: pre-training seed (default: 0)")
    base.add_argument("--base", help="local HF checkpoint folder to start from instead")
    p.add_argument("--preset", default="tiny", help="tiny preset of the base (default: tiny)")
    p.add_argument("--pretrain-only", action="store_true", help="only pre-train the tiny base")
    p.add_argument("--plan", help="mergekit passthrough YAML applied to the base before training")
    p.add_argument("--data", default="target",
                   help="original, target (default), or a local .txt/.jsonl/save_to_disk path")
    length = p.add_mutually_exclusive_group()
    length.add_argument("--steps", type=positive_int, help="optimizer steps")
    length.add_argument("--epochs", type=positive_int, help="epochs (default: the tiny default, 1)")
    p.add_argument("--lr", type=float, help="peak learning rate (default: the tiny default)")
    p.add_argument("--mode", choices=("full", "lora", "freeze"), default="full", help="(default: full)")
    p.add_argument("--lora-r", type=positive_int, default=8, help="LoRA rank (default: 8)")
    p.add_argument("--lora-alpha", type=float, default=16.0, help="LoRA alpha (default: 16)")
    p.add_argument("--freeze", type=layer_list, default=(), help="layers to freeze, e.g. 0-18,42-54")
    p.add_argument("--seed", type=int, help="run seed: data order, LoRA init (default: the base seed)")
    p.add_argument("--snapshots", type=layer_list, default=(0,), help="snapshot steps (default: 0)")
    p.add_argument("--cache", help="cache folder (default: $UPLAB_CACHE or .uplab-cache)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--print-spec", action="store_true", help="print the resolved spec and exit")
    p.set_defaults(func=run)


def build_spec(args):
    from harness.runs import Checkpoint, finetune, tiny_base
    from harness.train import Freeze, Full, Lora

    base = Checkpoint(path=args.base) if args.base else tiny_base(args.base_seed, preset=args.preset)
    if args.pretrain_only:
        if args.base:
            raise UplabError("--pretrain-only pre-trains a tiny preset; drop --base")
        return base
    extra = {k: v for k, v in (("steps", args.steps), ("epochs", args.epochs), ("lr", args.lr),
                               ("seed", args.seed)) if v is not None}
    if args.data not in ("original", "target"):
        if not Path(args.data).exists():
            raise UplabError(f"data path {args.data!r} does not exist; pass original, target or a local path")
        extra["data"] = DataSpec(train=Local(path=args.data))
    elif args.data != "target":
        extra["data"] = DataSpec.synthetic(args.data, size=64 * 32)
    mode = {"full": Full(), "lora": Lora(r=args.lora_r, alpha=args.lora_alpha),
            "freeze": Freeze(layers=args.freeze)}[args.mode]
    plan = Path(args.plan).read_text() if args.plan else None
    return finetune(base, plan=plan, mode=mode, snapshots=args.snapshots, **extra)


def run(args) -> int:
    from harness.runs import default_cache_dir, get_or_run

    if args.plan and not Path(args.plan).is_file():
        raise UplabError(f"{args.plan}: no such config file")
    spec = build_spec(args)
    if args.print_spec:
        print(json.dumps(json.loads(spec.canonical()), indent=2))
        return 0
    cache = Path(args.cache) if args.cache else default_cache_dir()
    t0 = time.perf_counter()
    result = get_or_run(spec, cache, progress=not args.quiet)
    print(f"run {spec.key[:12]} in {result.path} ({time.perf_counter() - t0:.1f} s; "
          f"{result.metrics['total_steps']} steps, snapshots {result.steps})")
    for e in (result.metrics["evals"][0], result.metrics["evals"][-1]):
        scores = ", ".join(f"{k} loss {v['loss']:.3f}" + (f" acc {v['acc']:.2f}" if v["acc"] is not None else "")
                           for k, v in e["sets"].items())
        print(f"  step {e['step']:>5}: {scores}")
    return 0
