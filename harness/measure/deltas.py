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

from dataclasses import fields

from tqdm.auto import tqdm

from harness import arch as arch_facts
from harness.errors import UplabError
from harness.layermap import LayerMap
from harness.measure.kernel import CHUNK_ELEMS, Sums, map_tensors
# the rows and their outputs belong to this API: importers take them from here
from harness.measure.rows import METRICS, DeltaMatrix, DeltaRow, pivot, write_csv  # noqa: F401
from harness.measure.sides import Side, Source, check_pair, row_key
from harness.measure.sides import depth as depth_of


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
    a, b = Side(base, "BASE"), Side(tuned, "TUNED")
    try:
        facts = arch_facts.get(model_type or a.model_type or b.model_type or arch_facts.FALLBACK)
        check_pair(a, b, facts)
        depth = depth_of(a.shapes, facts)
        if layer_map is not None and layer_map.num_layers != depth:
            raise UplabError(
                f"the plan's layer map has {layer_map.num_layers} layers but {a.label} has {depth}; "
                "give the plan that built BASE (BASE must be the upscale itself)"
            )
        sums: dict[tuple[int | None, str], Sums] = {}
        names = list(a.shapes)  # on-disk order of BASE: reads stay sequential
        # tqdm's disable=None: a bar only on a terminal
        disable = {True: False, False: True}.get(progress)
        with tqdm(total=len(names), unit="tensor", desc="diff", disable=disable,
                  leave=False) as bar:
            results = map_tensors(a, b, names, chunk_elems, workers)
            for name, tensor_sums in zip(names, results, strict=True):
                sums.setdefault(row_key(name, facts), Sums()).add(tensor_sums)
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
