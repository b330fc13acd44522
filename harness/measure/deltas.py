"""Weight deltas between two checkpoints, per (layer, module), streamed tensor by tensor (DESIGN §6).

For W₀ (base) and W₁ (tuned), ΔW = W₁ − W₀:

- `l2`       ‖ΔW‖ (Frobenius)
- `rel`      ‖ΔW‖ / ‖W₀‖; undefined (None) where W₀ = 0, e.g. a duplicate's zeroed o_proj
- `mean_abs` mean |ΔW| over the module's elements
- `cos`      cosine distance 1 − cos(W₀, W₁) in [0, 2]; undefined where W₀ = 0 or W₁ = 0
- `fill`     only with a layer map, only for the modules a duplicate zeroed (scale 0):
             ‖W₁‖ / ‖W_src‖, where W_src is the same module of the *orig* layer with the same
             source, read from the *base* side. With base = the upscale before training, that is
             the untouched copy of the copied-from layer, so fill = 1 means "as large as the
             layer it was cloned from". Undefined elsewhere.

A module with both `.weight` and `.bias` (Qwen2's q/k/v) is one row: its sums run over both
tensors, as if they were one vector. Non-layer tensors (embeddings, final norm, lm_head) are rows
with `layer = None`; tensors no architecture entry names keep their own path as module name.

Numerics: each chunk is cast to float32 (float64 if either side is float64), ΔW is formed in that
precision, and the per-chunk sums ‖W₀‖², ⟨W₀, ΔW⟩, ‖ΔW‖², Σ|ΔW| are accumulated across chunks in
Python floats (float64). The cosine distance is derived from those four sums without the
cancellation of 1 − ⟨W₀,W₁⟩/(‖W₀‖‖W₁‖): with s = ‖W₀‖ + ‖W₁‖ and ‖W₁‖ − ‖W₀‖ = (2⟨W₀,ΔW⟩ + ‖ΔW‖²)/s,
1 − cos = (‖ΔW‖² − (‖W₁‖ − ‖W₀‖)²) / (2‖W₀‖‖W₁‖), accurate even when ΔW is tiny.
"""

from __future__ import annotations

import csv
import math
import threading
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from harness import arch as arch_facts
from harness.checkpoint import Checkpoint
from harness.errors import UplabError
from harness.layermap import LayerMap

METRICS = ("l2", "rel", "mean_abs", "cos", "fill")
CSV_COLUMNS = ("layer", "module") + METRICS
CHUNK_ELEMS = 1 << 18  # 1 MiB of float32 per operand: each chunk's passes stay in L2/L3 cache
DEFAULT_NAMING = "mistral"  # mistral, llama and qwen2 share tensor names

StateDict = Mapping[str, torch.Tensor]
Source = StateDict | Checkpoint | str | Path


@dataclass(frozen=True)
class DeltaRow:
    """One (layer, module); a metric that is undefined there is None."""

    layer: int | None
    module: str
    l2: float
    rel: float | None
    mean_abs: float
    cos: float | None
    fill: float | None = None
    numel: int | None = None
    norm_base: float | None = None
    norm_tuned: float | None = None

    def get(self, metric: str) -> float | None:
        if metric not in METRICS:
            raise UplabError(f"unknown metric {metric!r}; choose one of {', '.join(METRICS)}")
        return getattr(self, metric)


@dataclass(frozen=True)
class DeltaMatrix:
    """One metric as a (module × layer) array, NaN where undefined; non-layer rows in `extras`."""

    metric: str
    modules: tuple[str, ...]
    layers: tuple[int, ...]
    values: np.ndarray
    extras: dict[str, float]

    def row(self, module: str) -> np.ndarray:
        return self.values[self.modules.index(module)]


# --- the two kinds of input -------------------------------------------------------------------


class _Side:
    """Names, shapes and chunked reads of one side, whether a checkpoint or a state dict."""

    def __init__(self, source: Source, label: str):
        self.owned = isinstance(source, (str, Path))
        if self.owned:
            source = Checkpoint(source)
        self.source = source
        if isinstance(source, Checkpoint):
            self.label = f"{label} ({source.path})"
            self.model_type = source.model_type
            self.shapes = {n: source.tensors[n].shape for n in source.names()}
        elif isinstance(source, Mapping):
            self.label = label
            self.model_type = None
            self.shapes = {n: tuple(t.shape) for n, t in source.items()}
        else:
            raise TypeError(f"expected a state dict, a Checkpoint or a path, got {type(source).__name__}")

    def chunks(self, name: str, n: int) -> Iterator[torch.Tensor]:
        if isinstance(self.source, Checkpoint):
            return self.source.chunks(name, n)
        flat = self.source[name].detach().reshape(-1)
        return iter(flat.split(n)) if flat.numel() else iter([flat])

    def close(self) -> None:
        if self.owned:
            self.source.close()


def _check_pair(a: _Side, b: _Side, facts: arch_facts.Architecture) -> None:
    """Everything that can be wrong before reading a byte: architecture, depth, names, shapes."""
    if a.model_type and b.model_type and a.model_type != b.model_type:
        raise UplabError(
            f"{a.label} is a {a.model_type} model but {b.label} is a {b.model_type} model; "
            "diff two checkpoints of one architecture"
        )
    da, db = _depth(a.shapes, facts), _depth(b.shapes, facts)
    if da != db:
        raise UplabError(
            f"{a.label} has {da} layers but {b.label} has {db}; diff checkpoints of the same depth "
            "(for an upscale: the upscaled model before training against the tuned one)"
        )
    for x, y in ((a, b), (b, a)):
        missing = [n for n in x.shapes if n not in y.shapes]
        if missing:
            more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
            raise UplabError(
                f"{y.label} lacks {missing[0]}{more} that {x.label} has; "
                "diff two checkpoints of the same model (re-save the incomplete one)"
            )
    for n, shape in a.shapes.items():
        if b.shapes[n] != shape:
            raise UplabError(
                f"{n} has shape {list(shape)} in {a.label} but {list(b.shapes[n])} in {b.label}; "
                "diff two checkpoints of the same model"
            )


def _depth(shapes: Mapping[str, tuple], facts: arch_facts.Architecture) -> int:
    layers = [s[0] for s in map(facts.split, shapes) if s]
    return max(layers) + 1 if layers else 0


def _key(name: str, facts: arch_facts.Architecture) -> tuple[int | None, str]:
    split = facts.split(name)
    if split:
        layer, inner = split
        return layer, facts.module_of(inner) or _strip(inner)
    return None, facts.extra_module_of(name) or _strip(name)


def _strip(path: str) -> str:
    for suffix in (".weight", ".bias"):
        if path.endswith(suffix):
            return path[: -len(suffix)]
    return path


# --- the kernel -------------------------------------------------------------------------------


class _Scratch:
    """One worker's buffers, per working dtype: the cast W₀ and ΔW, reused from chunk to chunk."""

    def __init__(self) -> None:
        self.bufs: dict[tuple[int, torch.dtype], torch.Tensor] = {}

    def get(self, slot: int, n: int, dtype: torch.dtype) -> torch.Tensor:
        buf = self.bufs.get((slot, dtype))
        if buf is None or buf.numel() < n:
            buf = self.bufs[(slot, dtype)] = torch.empty(n, dtype=dtype)
        return buf[:n]


def _chunk_sums(a: torch.Tensor, b: torch.Tensor, scratch: _Scratch):
    """(‖a‖², ⟨a, b−a⟩, ‖b−a‖², Σ|b−a|) of two 1-D chunks, in float32 or float64.

    The inputs are only read (they may be views of a file's memory map or the caller's tensors).
    W₀ is always copied into the scratch buffer, even when no cast is needed: reductions over
    memory of a different alignment sum in a different order, and the rows should not change in
    the last bit with how a checkpoint happens to be sharded.
    """
    work = torch.float64 if torch.float64 in (a.dtype, b.dtype) else torch.float32
    n = a.numel()
    a = scratch.get(0, n, work).copy_(a)
    d = scratch.get(1, n, work)
    if b.dtype == work:
        torch.sub(b, a, out=d)
    else:
        d.copy_(b)
        d.sub_(a)
    aa = torch.dot(a, a).item()
    ad = torch.dot(a, d).item()
    dd = torch.dot(d, d).item()
    l1 = d.abs_().sum().item()
    return aa, ad, dd, l1


def _tensor_sums(a: _Side, b: _Side, name: str, chunk_elems: int, scratch: _Scratch) -> _Sums:
    out = _Sums()
    for ca, cb in zip(a.chunks(name, chunk_elems), b.chunks(name, chunk_elems), strict=True):
        aa, ad, dd, l1 = _chunk_sums(ca, cb, scratch)
        if not math.isfinite(aa + ad + dd + l1):
            side = a if not math.isfinite(aa) else b
            raise UplabError(
                f"{name} in {side.label} has NaN or Inf values; the checkpoint is broken "
                "(re-save it, or take an earlier snapshot of the run)"
            )
        out.add(_Sums(ca.numel(), aa, ad, dd, l1))
    return out


def _map_tensors(a: _Side, b: _Side, names: list[str], chunk_elems: int,
                 workers: int | None) -> Iterator[_Sums]:
    """Each tensor's sums, in the order of `names`, computed by `workers` threads.

    torch's own intra-op threads would split every small chunk across cores and wait at a
    barrier per op; on a busy machine those waits dominate (measured on 2 shared cores: 10x
    slower, burning CPU while spinning). Instead each worker runs torch single-threaded (a
    thread-local setting; the global default is put back afterwards) on whole tensors, and
    results are consumed in order, so the accumulation order, and thus every bit of the result,
    does not depend on `workers`.
    """
    n = max(1, min(8, workers or torch.get_num_threads()))
    threads_before = torch.get_num_threads()
    if n == 1:
        scratch = _Scratch()
        torch.set_num_threads(1)
        try:
            for name in names:
                yield _tensor_sums(a, b, name, chunk_elems, scratch)
        finally:
            torch.set_num_threads(threads_before)
        return
    local = threading.local()

    def job(name: str) -> _Sums:
        if not hasattr(local, "scratch"):
            torch.set_num_threads(1)
            local.scratch = _Scratch()
        return _tensor_sums(a, b, name, chunk_elems, local.scratch)

    pool = ThreadPoolExecutor(n, thread_name_prefix="uplab-diff")
    try:
        # a bounded window of tensors in flight keeps results small and ordered
        window = deque(pool.submit(job, name) for name in names[: 2 * n])
        rest = iter(names[2 * n:])
        while window:
            result = window.popleft().result()
            nxt = next(rest, None)
            if nxt is not None:
                window.append(pool.submit(job, nxt))
            yield result
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        torch.set_num_threads(threads_before)  # the setting's global default, as it was


@dataclass
class _Sums:
    n: int = 0
    aa: float = 0.0
    ad: float = 0.0
    dd: float = 0.0
    l1: float = 0.0

    def add(self, other: _Sums) -> None:
        self.n += other.n
        self.aa += other.aa
        self.ad += other.ad
        self.dd += other.dd
        self.l1 += other.l1

    def row(self, layer: int | None, module: str) -> DeltaRow:
        na = math.sqrt(self.aa)
        bb = max(self.aa + 2 * self.ad + self.dd, 0.0)
        nb = math.sqrt(bb)
        l2 = math.sqrt(self.dd)
        cos = None
        if na > 0 and nb > 0:
            gap = (2 * self.ad + self.dd) / (na + nb)  # ‖W₁‖ − ‖W₀‖ without cancellation
            cos = min(max((self.dd - gap * gap) / (2 * na * nb), 0.0), 2.0)
        return DeltaRow(
            layer=layer, module=module, l2=l2, rel=l2 / na if na > 0 else None,
            mean_abs=self.l1 / self.n if self.n else 0.0, cos=cos,
            numel=self.n, norm_base=na, norm_tuned=nb,
        )


# --- the public API ---------------------------------------------------------------------------


def weight_deltas(
    base: Source,
    tuned: Source,
    *,
    layer_map: LayerMap | None = None,
    model_type: str | None = None,
    progress: bool | None = False,
    chunk_elems: int = CHUNK_ELEMS,
    workers: int | None = None,
) -> list[DeltaRow]:
    """Per-(layer, module) deltas of `tuned` against `base`, plus the non-layer tensors.

    `base` and `tuned` are state dicts, `Checkpoint`s or paths (an HF checkpoint directory,
    sharded or not, or one .safetensors file); paths are streamed a chunk at a time, so memory
    stays at a few MiB whatever the model's size. `layer_map` (the plan's, for `base` being the
    upscale) enables `fill`. `model_type` picks the tensor naming (default: the checkpoints'
    config.json, else Mistral's, which Llama and Qwen2 share). `progress`: a tqdm bar over
    tensors (None: only on a terminal). `workers`: threads, each diffing whole tensors with
    single-threaded torch ops (default: torch's thread count, at most 8); the rows are the same,
    bit for bit, for any number of workers.
    """
    a, b = _Side(base, "BASE"), _Side(tuned, "TUNED")
    try:
        facts = arch_facts.get(model_type or a.model_type or b.model_type or DEFAULT_NAMING)
        _check_pair(a, b, facts)
        depth = _depth(a.shapes, facts)
        if layer_map is not None and layer_map.num_layers != depth:
            raise UplabError(
                f"the plan's layer map has {layer_map.num_layers} layers but {a.label} has {depth}; "
                "give the plan that built BASE (BASE must be the upscale itself)"
            )
        sums: dict[tuple[int | None, str], _Sums] = {}
        names = list(a.shapes)  # on-disk order of BASE: reads stay sequential
        # tqdm's disable=None: a bar only on a terminal
        disable = {True: False, False: True}.get(progress)
        with tqdm(total=len(names), unit="tensor", desc="diff", disable=disable,
                  leave=False) as bar:
            results = _map_tensors(a, b, names, chunk_elems, workers)
            for name, tensor_sums in zip(names, results, strict=True):
                sums.setdefault(_key(name, facts), _Sums()).add(tensor_sums)
                bar.update()
    finally:
        a.close()
        b.close()
    rows = [s.row(layer, module) for (layer, module), s in sums.items()]
    if layer_map is not None:
        rows = _with_fill(rows, layer_map)
    return sorted(rows, key=_row_order(facts))


def _with_fill(rows: list[DeltaRow], layer_map: LayerMap) -> list[DeltaRow]:
    by_key = {(r.layer, r.module): r for r in rows}
    orig_of = {e.source: e.index for e in layer_map.layers if e.role == "orig"}
    out = []
    for r in rows:
        entry = layer_map.layers[r.layer] if r.layer is not None else None
        if entry is not None and entry.role == "dup" and r.module in entry.zeroed:
            src = by_key.get((orig_of.get(entry.source), r.module))
            if src is not None and src.norm_base:
                r = _replace(r, fill=r.norm_tuned / src.norm_base)
        out.append(r)
    return out


def _replace(row: DeltaRow, **changes) -> DeltaRow:
    return DeltaRow(**{**{f.name: getattr(row, f.name) for f in fields(row)}, **changes})


def _row_order(facts: arch_facts.Architecture):
    known = list(facts.modules) + ["embed_tokens", "norm", "lm_head"]

    def key(r: DeltaRow):
        rank = known.index(r.module) if r.module in known else len(known)
        return (r.layer is None, r.layer if r.layer is not None else 0, rank, r.module)

    return key


def pivot(rows: list[DeltaRow], metric: str = "rel") -> DeltaMatrix:
    """One metric as a (module × layer) matrix: modules in architecture order, every layer 0..L-1."""
    if metric not in METRICS:
        raise UplabError(f"unknown metric {metric!r}; choose one of {', '.join(METRICS)}")
    layer_rows = [r for r in rows if r.layer is not None]
    modules = tuple(dict.fromkeys(r.module for r in layer_rows))  # rows come sorted
    depth = max((r.layer for r in layer_rows), default=-1) + 1
    values = np.full((len(modules), depth), np.nan)
    for r in layer_rows:
        v = getattr(r, metric)
        if v is not None:
            values[modules.index(r.module), r.layer] = v
    extras = {r.module: (math.nan if getattr(r, metric) is None else getattr(r, metric))
              for r in rows if r.layer is None}
    return DeltaMatrix(metric, modules, tuple(range(depth)), values, extras)


def write_csv(rows: list[DeltaRow], path: str | Path) -> None:
    """Tidy CSV: layer (empty for non-layer tensors), module, l2, rel, mean_abs, cos, fill."""
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(CSV_COLUMNS)
        for r in rows:
            w.writerow([_cell(getattr(r, c)) for c in CSV_COLUMNS])


def _cell(v) -> str:
    if v is None:
        return ""
    return repr(v) if isinstance(v, float) else str(v)


def read_csv(path: str | Path) -> list[DeltaRow]:
    """Rows back from `write_csv` (numel and norms are not in the file: None)."""
    with open(path, newline="") as f:
        out = []
        for rec in csv.DictReader(f):
            val = {m: float(rec[m]) if rec[m] != "" else None for m in METRICS}
            layer = int(rec["layer"]) if rec["layer"] != "" else None
            out.append(DeltaRow(layer=layer, module=rec["module"], **val))
        return out
