"""`uplab diff BASE TUNED --out DIR`: per-(layer, module) weight deltas and their heatmap."""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

from harness.commands._common import lazy_choices
from harness.errors import UplabError, printable

DESCRIPTION = """\
Compare two checkpoints of one model, tensor by tensor, and write:

  DIR/deltas.csv   one row per (layer, module): layer (empty for embeddings, final norm and
                   lm_head), module, l2 = ||dW||, rel = ||dW||/||W0||, mean_abs = mean |dW|,
                   cos = 1 - cos(W0, W1), fill = ||W1||/||W_source|| (see --plan). A metric that
                   is undefined for a row is left empty: rel where W0 = 0 (a duplicate's zeroed
                   o_proj/down_proj), cos where W0 or W1 = 0, fill without --plan.
  DIR/heatmap.png  module type x layer of --metric. Each row has its own colour scale (its
                   largest value inside Tukey's fence Q3 + 1.5 IQR, printed on the right), so
                   one outlying layer cannot wash out a row; outliers get their own colour.
                   With --plan: orig/dup bands and slice boundaries.

BASE and TUNED are Hugging Face checkpoint directories (config.json and model.safetensors, or
shards with model.safetensors.index.json; bf16, fp16 or fp32). They are read a chunk at a time,
so memory stays small whatever the model's size. A module with weight and bias is one row.
For a rate-of-change view, diff two snapshots: BASE = epoch 1, TUNED = epoch 2.

With --plan CONFIG (the mergekit passthrough config that built BASE; BASE must be the upscale,
as deep as the plan's output), fill is computed for the modules a duplicate zeroed: the norm of
the module in TUNED over the norm of the same module of the orig layer with the same source, in
BASE. Without --plan, fill is empty.

Bad input (missing directory or shard, index entries a shard lacks, truncated files or negative
dimensions in a header, a config.json without model_type or whose depth differs from the layers
in the weights, a stray layer index, different architectures, depths or shapes, NaN/Inf
weights) stops with one line and exit status 2, before anything is written; DIR receives its
two files only when both are complete. Checkpoints stored in different dtypes (bf16 vs fp16)
get a note: their rounding shows up as change."""


def register(sub) -> None:
    p = sub.add_parser(
        "diff",
        help="per-layer, per-module weight deltas of two checkpoints, as CSV and heatmap",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("base", metavar="BASE", help="checkpoint before (e.g. the upscale before training)")
    p.add_argument("tuned", metavar="TUNED", help="checkpoint after (e.g. the fine-tuned upscale)")
    p.add_argument("--out", required=True, metavar="DIR", help="output directory (created if needed)")
    p.add_argument("--plan", metavar="CONFIG",
                   help="mergekit passthrough config that built BASE: enables fill and role bands")
    p.add_argument("--metric", choices=lazy_choices("harness.measure.deltas", "METRICS"), default="rel",
                   metavar="METRIC", help="heatmap metric: %(choices)s (default: rel)")
    p.add_argument("--scale", choices=("row", "global"), default="row",
                   help="heatmap colour scale: per row (default) or one for all, as in the seed")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args) -> int:
    from harness.checkpoint import Checkpoint
    from harness.heatmap import plot_deltas
    from harness.measure.deltas import weight_deltas, write_csv

    if args.metric == "fill" and not args.plan:
        raise UplabError("--metric fill needs --plan CONFIG (the plan that built BASE)")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UplabError(f"--out {out} is a file; give a directory")
    with Checkpoint(args.base) as base, Checkpoint(args.tuned) as tuned:
        for path, ckpt in ((args.base, base), (args.tuned, tuned)):
            _check_config(path, ckpt)
        note = _dtype_note(base, tuned)
        layer_map = _layer_map(args.plan, base.model_type) if args.plan else None
        rows = weight_deltas(base, tuned, layer_map=layer_map,
                             progress=False if args.quiet else None)
    title = f"{args.metric}: {Path(args.tuned).name} vs {Path(args.base).name}"
    fig = plot_deltas(rows, metric=args.metric, layer_map=layer_map, scale=args.scale, title=title)

    with _staged(out) as stage:
        write_csv(rows, stage("deltas.csv"))
        fig.savefig(stage("heatmap.png"), format="png", dpi=110, metadata={"Software": None})
    print(printable(f"wrote {out / 'deltas.csv'} ({len(rows)} rows) and {out / 'heatmap.png'}"))
    if note:
        print(note)
    return 0


def _check_config(path: str, ckpt) -> None:
    """config.json against the weights, as the README promises, before any tensor is read: a
    config without model_type (read as mistral before), one that gives another depth, and a
    stray layer index (model.layers.9999, or 1e11: a row per layer up to it) are one line."""
    from harness.checkpoint import check_layers, config_facts

    if ckpt.config is None:  # a bare .safetensors file has no config to check
        return
    facts, depth = config_facts(ckpt.config, Path(path) / "config.json")
    check_layers(ckpt.names(), facts, depth, path)


def _dtype_note(base, tuned) -> str | None:
    """A line when the two are stored in different float dtypes: a bf16 vs fp16 diff is mostly
    the two roundings (bf16 keeps 8 mantissa bits, fp16 11), not training."""
    dtypes = [sorted({str(i.dtype).removeprefix("torch.") for i in c.tensors.values()}) for c in (base, tuned)]
    if dtypes[0] == dtypes[1]:
        return None
    return (f"note: BASE is stored as {'/'.join(dtypes[0])} and TUNED as {'/'.join(dtypes[1])}: the deltas "
            "include their rounding (up to ~0.4 % of each weight in bf16), not only training")


def _layer_map(config: str, model_type: str | None):
    from harness import arch as arch_facts
    from harness.plan import load_plan

    plan = load_plan(config)
    # The source's depth only matters to the linter; the ranges' furthest end is enough here.
    source_depth = max((b for _, b in plan.ranges()), default=0)
    return plan.layer_map(num_layers=source_depth, model_type=model_type or arch_facts.FALLBACK)


class _staged:
    """Write files as temp files in DIR; rename them all at the end, or leave no trace."""

    def __init__(self, out: Path):
        self.out = out
        self.created: list[Path] = []
        self.temps: dict[str, Path] = {}

    def __enter__(self):
        missing = [p for p in (self.out, *self.out.parents) if not p.exists()]
        try:
            self.out.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise UplabError(f"cannot create --out {self.out} ({e.strerror})") from None
        self.created = missing  # deepest first: removed in this order on failure
        return self._stage

    def _stage(self, name: str) -> Path:
        from harness.checkpoint.output import umask

        fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=self.out)
        os.close(fd)
        os.chmod(tmp, 0o666 & ~umask())  # mkstemp's 0600 would outlive the rename
        self.temps[name] = Path(tmp)
        return Path(tmp)

    def __exit__(self, kind, exc, tb):
        if kind is None:
            try:
                for name, tmp in self.temps.items():
                    os.replace(tmp, self.out / name)
                return False
            except OSError as e:
                kind, exc = OSError, e
        for tmp in self.temps.values():
            tmp.unlink(missing_ok=True)
        for d in self.created:
            try:
                d.rmdir()
            except OSError:
                break
        if isinstance(exc, OSError):
            raise UplabError(
                f"cannot write to {self.out} ({exc.strerror or exc}); free disk space or choose "
                "another --out"
            ) from None
        return False
