"""`uplab resources CONFIG_OR_PRESET`: how many GPUs of which memory a fine-tune needs, per mode.

The numbers come from harness.launch.resources (docs/scale.md explains every term). The tables
in docs/scale.md are this command's output; `python -m harness.commands.resources docs/scale.md`
rewrites them after a change, and tests/test_resources.py fails while they are stale.
"""

from __future__ import annotations

import argparse
import io
import re
import shlex
import sys
from contextlib import redirect_stdout
from pathlib import Path

from harness.commands._common import positive_int
from harness.commands.train import layer_list
from harness.errors import UplabError

MODES = ("full", "lora", "freeze")
SEQ_LEN, BATCH = 4096, 8  # a long-context fine-tune step; both flags change them


def positive_gib(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected GiB of GPU memory such as 80, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive amount of GiB, got {text!r}")
    return value


def register(sub) -> None:
    p = sub.add_parser(
        "resources",
        help="GPUs of which memory a fine-tune needs, per mode (computed, no weights loaded)",
        description="Per-GPU peak memory of a fine-tune by uplab's training loop, and the fewest "
        "GPUs that hold it: one process when it fits one GPU, else FSDP (the shipped "
        "harness/launch/configs/fsdp.yaml) over G GPUs. Rows: full fine-tune, LoRA, freeze, for "
        "the base and, with --plan, the upscale. Example: uplab resources "
        "examples/mistral-small-22b.json --plan examples/seed-39b.yml",
    )
    p.add_argument("config", metavar="CONFIG_OR_PRESET", nargs="+",
                   help="an HF config.json, a checkpoint folder holding one, or a preset name "
                   "(several: one table)")
    p.add_argument("--plan", help="mergekit passthrough YAML: also size the upscale (freeze rows "
                   "train what the plan duplicates)")
    p.add_argument("--gpu-memory", type=positive_gib, metavar="GIB",
                   help="one GPU size in GiB instead of the table's A100/H100/H200 columns")
    p.add_argument("--seq-len", type=positive_int, help=f"tokens per sequence (default: {SEQ_LEN}, "
                   "at most the model's max_position_embeddings)")
    p.add_argument("--batch", type=positive_int, default=BATCH,
                   help=f"sequences per optimizer step, over all GPUs (default: {BATCH})")
    p.add_argument("--mode", choices=MODES, action="append", help="only this mode (repeatable)")
    p.add_argument("--freeze", type=layer_list, help="layers to freeze, e.g. 0-18,42-54 (without --plan)")
    p.add_argument("--lora-r", type=positive_int, help="LoRA rank (default: the run spec's)")
    p.add_argument("--markdown", action="store_true", help="markdown tables (as in docs/scale.md)")
    p.set_defaults(func=run)


def _count(n: int) -> str:
    for exp in (9, 6, 3):
        if n >= 10**exp:
            return f"{n / 10**exp:.3g}e{exp}"
    return str(n)


def _rows(args):
    """(label, source Dims, Dims, mode kind, Trainable) for every row of the table."""
    from harness.launch import resources as R
    from harness.plan import load_plan
    from harness.train.modes import Freeze, Full, Lora

    if args.plan and args.freeze:
        raise UplabError("--freeze sizes a model without a plan; with --plan the frozen layers "
                         "come from the plan (drop one of them)")
    plan = load_plan(args.plan) if args.plan else None
    lora = Lora(r=args.lora_r) if args.lora_r else Lora()
    wanted = args.mode or list(MODES)
    models = []  # (label, source dims, dims, frozen layers or None)
    for source in args.config:
        config, label = R.load_config(source)
        base = R.Dims.from_config(config, label)
        name = source if len(args.config) > 1 else "base"
        if plan is None:
            models.append((name, base, base, list(args.freeze) if args.freeze else None))
            continue
        up_config, lm = R.upscale(config, plan, label)
        copied = {e.source for e in lm.layers if e.role == "dup"}
        # base: train the layers the upscale duplicates (freezing_replicates_effect's control);
        # upscale: train only the copies (LLaMA Pro, freeze_originals)
        models.append((name, base, base, [j for j in range(base.layers) if j not in copied]))
        models.append((f"{source} upscale" if len(args.config) > 1 else "upscale", base,
                       R.Dims.from_config(up_config, label), lm.indices("orig")))
    if "freeze" in wanted and args.mode and any(m[3] is None for m in models):
        raise UplabError("--mode freeze needs the layers to freeze: pass --freeze LAYERS "
                         "(e.g. 0-18,42-54) or --plan PLAN")
    rows = []
    for name, source, d, frozen in models:
        for kind in wanted:
            if kind == "full":
                mode = Full()
            elif kind == "lora":
                mode = lora
            elif frozen is None:
                continue  # no layers to freeze were given: the note under the table says so
            else:
                mode = Freeze(layers=tuple(frozen))
            rows.append((name, source, d, kind, R.Trainable.of(mode, d.layers)))
    return rows, lora, any(m[3] is None for m in models) and "freeze" in wanted


def _seq_len(args, d) -> int:
    if args.seq_len is None:
        return min(SEQ_LEN, d.max_positions or SEQ_LEN)
    if d.max_positions and args.seq_len > d.max_positions:
        raise UplabError(f"--seq-len {args.seq_len} exceeds the model's max_position_embeddings "
                         f"({d.max_positions}); pass at most that")
    return args.seq_len


def tables(args) -> str:
    from harness.launch import resources as R
    from harness.launch.command import decoder_layer_class

    rows, lora, no_freeze = _rows(args)
    gpus = {f"{args.gpu_memory:g} GiB": args.gpu_memory} if args.gpu_memory else R.GPUS
    layer_classes = sorted({decoder_layer_class(r[2].architecture) for r in rows})
    lines = [
        ", ".join(args.config) + (f" upscaled by {args.plan}" if args.plan else "")
        + f" (FSDP unit: {', '.join(layer_classes)})",
        f"a step is `batch × seq_len` tokens over all GPUs (G GPUs take ceil(batch/G) sequences "
        f"each); a GPU is full at {R.USABLE:.0%} of its memory, {R.OVERHEAD / R.GIB:.1f} GiB of it "
        "fixed overhead; weights load in fp32 (runner.load_base)",
        f"LoRA: r {lora.r} on {', '.join(lora.targets)}",
    ]
    if no_freeze:
        lines.append("freeze: pass --freeze LAYERS or --plan PLAN to size it (it needs at most "
                     "what full needs)")
    if args.markdown:
        lines = [line + "  " for line in lines]  # markdown line breaks
    head = ["model", "layers", "params", "mode", "trainable", "step", "1 process", *gpus]
    body, answers = [], []
    for name, source, d, kind, t in rows:
        seq = _seq_len(args, source)
        single = R.estimate(d, t, gpus=1, fsdp=False, seq_len=seq, batch=args.batch)
        cells = []
        for size in gpus.values():
            e = R.min_gpus(d, t, size * R.GIB, seq_len=seq, batch=args.batch)
            cells.append(f"{e.label()}, {R.gib(e.total)}" if e else f"> {R.MAX_GPUS}")
            answers.append(e)
        body.append([name, str(d.layers), _count(d.params()), kind, _count(R.trainable_params(d, t)),
                     f"{args.batch} × {seq}", R.gib(single.total), *cells])
    out = "\n".join(lines) + "\n\n" + _table(head, body, args.markdown)
    # The terms behind one column's answers, so a reader can check the sums.
    col = next(iter(gpus)) if args.gpu_memory else "H100 80GB"
    k = list(gpus).index(col)
    detail = []
    for i, (name, source, d, kind, t) in enumerate(rows):
        e = answers[i * len(gpus) + k]
        if e is not None:
            detail.append([name, kind, e.label(), *(R.gib(b) for _, b in e.parts), R.gib(e.eval_bytes),
                           R.gib(e.host_bytes)])
    if detail:
        terms = ["weights", "grads", "adam", "bf16 copies / gathered", "activations", "overhead",
                 "scoring peak", "host RAM, all ranks"]
        out += (f"\n\nper GPU at the {col} answer (the total is the larger of the step's sum and the "
                "scoring peak):\n\n" + _table(["model", "mode", "GPUs", *terms], detail, args.markdown))
    return out


def _table(head: list[str], rows: list[list[str]], markdown: bool) -> str:
    if markdown:
        fmt = lambda r: "| " + " | ".join(r) + " |"  # noqa: E731
        return "\n".join([fmt(head), fmt(["---"] * len(head)), *map(fmt, rows)])
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in [head, *rows])


def run(args) -> int:
    print(tables(args))
    return 0


# ---- docs/scale.md: blocks of this command's output, kept current --------------------------

BLOCK = re.compile(r"(<!-- uplab resources (?P<args>[^>]*?) -->\n)(?P<body>.*?)(<!-- /uplab resources -->)", re.S)


def render(argv: list[str]) -> str:
    """The command's stdout for `uplab resources ARGV` (this module's own parser: no import of the CLI above it)."""
    parser = argparse.ArgumentParser(prog="uplab")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["resources", *argv])
    buf = io.StringIO()
    with redirect_stdout(buf):
        code = int(args.func(args) or 0)
    if code:
        raise UplabError(f"uplab resources {shlex.join(argv)} failed (exit {code})")
    return buf.getvalue()


def refresh(text: str) -> str:
    """`text` with every `<!-- uplab resources ARGS -->` block replaced by the current output."""
    return BLOCK.sub(lambda m: m.group(1) + render(shlex.split(m.group("args"))) + m.group(4), text)


if __name__ == "__main__":
    doc = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/scale.md")
    doc.write_text(refresh(doc.read_text()))
    print(f"refreshed {doc}")
