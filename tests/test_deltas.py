"""Weight deltas: hand computations, streaming equivalence, dtypes, fill on a hand-made upscale."""

from __future__ import annotations

import csv
import functools
import json
import math

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from harness import tiny
from harness.errors import UplabError
from harness.checkpoint import Checkpoint
from harness.layermap import LayerEntry, LayerMap
from harness.measure.deltas import METRICS, DeltaRow, pivot, weight_deltas, write_csv
from synthetic import write_checkpoint


def read_csv(path) -> list[DeltaRow]:
    """Rows back from `write_csv` (numel and norms are not in the file: None)."""
    with open(path, newline="") as f:
        out = []
        for rec in csv.DictReader(f):
            val = {m: float(rec[m]) if rec[m] != "" else None for m in METRICS}
            layer = int(rec["layer"]) if rec["layer"] != "" else None
            out.append(DeltaRow(layer=layer, module=rec["module"], **val))
        return out


ZERO = ("o_proj", "down_proj")
MODULES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj",
           "input_layernorm", "post_attention_layernorm")


# --- helpers shared with the probe, heatmap and diff tests -----------------------------------


def random_state(num_layers: int = 6, seed: int = 0, *, tie: bool = False, arch: str = "mistral"):
    """A tiny decoder's state dict with every weight random (fresh inits have zero biases etc.)."""
    return {k: v.clone() for k, v in _random_state(num_layers, seed, tie, arch).items()}


@functools.lru_cache(maxsize=16)
def _random_state(num_layers: int, seed: int, tie: bool, arch: str) -> dict:
    model = tiny.build(tiny.preset("tiny8", num_layers=num_layers, tie_embeddings=tie, arch=arch), seed)
    g = torch.Generator().manual_seed(seed)
    return {k: torch.randn(v.shape, generator=g) * 0.2 for k, v in model.state_dict().items()}


def upscale_state(sd: dict, order: list[int], dups: set[int]) -> dict:
    """Output layer i copies source layer order[i]; the indices in `dups` get zeroed o/down."""
    out = {k: v.clone() for k, v in sd.items() if not k.startswith("model.layers.")}
    for i, src in enumerate(order):
        for k, v in sd.items():
            prefix = f"model.layers.{src}."
            if k.startswith(prefix):
                w = v.clone()
                if i in dups and any(f".{m}." in k for m in ZERO):
                    w.zero_()
                out[f"model.layers.{i}." + k[len(prefix):]] = w
    return out


def hand_layer_map(order: list[int], dups: set[int], slices: list[int]) -> LayerMap:
    entries = tuple(
        LayerEntry(i, src, "dup" if i in dups else "orig", slices[i], 0.0,
                   {m: (0.0 if i in dups and m in ZERO else 1.0) for m in MODULES})
        for i, src in enumerate(order)
    )
    return LayerMap(max(order) + 1, entries)


# 6 source layers -> 8: [0, 4) orig, [2, 4) duplicated with zeroed o/down, [4, 6) orig
ORDER, DUPS, SLICES = [0, 1, 2, 3, 2, 3, 4, 5], {4, 5}, [0, 0, 0, 0, 1, 1, 2, 2]


def perturb(sd: dict, scale: float = 0.01, seed: int = 1) -> dict:
    g = torch.Generator().manual_seed(seed)
    return {k: v + scale * torch.randn(v.shape, generator=g) for k, v in sd.items()}


def row(rows: list[DeltaRow], layer, module) -> DeltaRow:
    (r,) = [r for r in rows if r.layer == layer and r.module == module]
    return r


# --- hand computations ------------------------------------------------------------------------


def test_metrics_match_a_hand_computation():
    w0 = torch.tensor([[3.0, 4.0], [0.0, 0.0]])
    w1 = torch.tensor([[3.0, 5.0], [0.0, 1.0]])
    rows = weight_deltas({"model.layers.0.self_attn.q_proj.weight": w0},
                         {"model.layers.0.self_attn.q_proj.weight": w1})
    r = row(rows, 0, "q_proj")
    # ΔW = [[0, 1], [0, 1]]: ‖ΔW‖ = √2, ‖W₀‖ = 5, mean|ΔW| = 2/4, ‖W₁‖ = √35, ⟨W₀,W₁⟩ = 29
    assert r.l2 == pytest.approx(math.sqrt(2), rel=1e-12)
    assert r.rel == pytest.approx(math.sqrt(2) / 5, rel=1e-12)
    assert r.mean_abs == pytest.approx(0.5, rel=1e-12)
    assert r.cos == pytest.approx(1 - 29 / (5 * math.sqrt(35)), rel=1e-9)
    assert r.norm_tuned == pytest.approx(math.sqrt(35), rel=1e-12)
    assert r.fill is None and r.numel == 4


def test_weight_and_bias_are_one_module():
    names = ("model.layers.0.self_attn.q_proj.weight", "model.layers.0.self_attn.q_proj.bias")
    a = {names[0]: torch.tensor([[1.0, 0.0]]), names[1]: torch.tensor([2.0])}
    b = {names[0]: torch.tensor([[1.0, 1.0]]), names[1]: torch.tensor([0.0])}
    (r,) = weight_deltas(a, b)
    # as one vector: W₀ = (1, 0, 2), W₁ = (1, 1, 0), ΔW = (0, 1, -2)
    assert (r.layer, r.module, r.numel) == (0, "q_proj", 3)
    assert r.l2 == pytest.approx(math.sqrt(5))
    assert r.rel == pytest.approx(math.sqrt(5) / math.sqrt(5))
    assert r.mean_abs == pytest.approx(1.0)
    assert r.cos == pytest.approx(1 - 1 / (math.sqrt(5) * math.sqrt(2)))


def test_undefined_metrics_are_none():
    name = "model.layers.0.mlp.down_proj.weight"
    zero, some = torch.zeros(2, 2), torch.ones(2, 2)
    (from_zero,) = weight_deltas({name: zero}, {name: some})
    assert from_zero.rel is None and from_zero.cos is None and from_zero.l2 == pytest.approx(2.0)
    (to_zero,) = weight_deltas({name: some}, {name: zero})
    assert to_zero.cos is None and to_zero.rel == pytest.approx(1.0)
    (same,) = weight_deltas({name: some}, {name: some.clone()})
    assert same.l2 == 0.0 and same.cos == 0.0 and same.rel == 0.0


def test_cosine_distance_of_a_tiny_change_is_accurate():
    g = torch.Generator().manual_seed(0)
    w0 = torch.randn(300, 200, generator=g, dtype=torch.float64)
    w1 = w0 + 1e-5 * torch.randn(300, 200, generator=g, dtype=torch.float64)
    name = "model.layers.0.mlp.up_proj.weight"
    (r,) = weight_deltas({name: w0.float()}, {name: w1.float()}, chunk_elems=4096)
    a, b = w0.float().double().flatten(), w1.float().double().flatten()
    exact = 0.5 * float(((a / a.norm()) - (b / b.norm())).square().sum())  # 1 − cos, stable form
    assert exact < 1e-9  # the naive 1 − ⟨a,b⟩/(‖a‖‖b‖) in float32 would be pure rounding noise
    assert r.cos == pytest.approx(exact, rel=1e-3)


def test_chunking_does_not_change_the_answer():
    sd0 = random_state(2)
    sd1 = perturb(sd0)
    whole = weight_deltas(sd0, sd1, chunk_elems=1 << 30)
    pieces = weight_deltas(sd0, sd1, chunk_elems=777)
    for x, y in zip(whole, pieces, strict=True):
        assert (x.layer, x.module) == (y.layer, y.module)
        for m in ("l2", "rel", "mean_abs", "cos"):
            assert getattr(y, m) == pytest.approx(getattr(x, m), rel=1e-5), (x.layer, x.module, m)


def test_worker_count_does_not_change_a_bit(pair):
    _, _, dirs = pair
    one = weight_deltas(*dirs["sharded"], chunk_elems=999, workers=1)
    assert weight_deltas(*dirs["sharded"], chunk_elems=999, workers=3) == one
    threads = torch.get_num_threads()
    weight_deltas(*dirs["single"], workers=2)
    assert torch.get_num_threads() == threads  # the workers' single-threading does not leak


def test_caller_tensors_are_not_modified():
    sd0, sd1 = random_state(1), None
    sd1 = perturb(sd0)
    before = {k: v.clone() for k, v in sd1.items()}
    weight_deltas(sd0, sd1, chunk_elems=50)
    assert all(torch.equal(before[k], sd1[k]) for k in sd1)


# --- rows: non-layer tensors, order, pivot, CSV ------------------------------------------------


def test_non_layer_tensors_are_rows_without_a_layer():
    sd0 = random_state(2, tie=False)
    rows = weight_deltas(sd0, perturb(sd0))
    extras = {r.module: r for r in rows if r.layer is None}
    assert set(extras) == {"embed_tokens", "norm", "lm_head"}
    assert rows[-3:] == [extras["embed_tokens"], extras["norm"], extras["lm_head"]]
    assert [r.module for r in rows if r.layer == 0] == list(MODULES)


def test_pivot_is_module_by_layer_with_nan_where_undefined():
    sd = random_state(6)
    up = upscale_state(sd, ORDER, DUPS)
    m = pivot(weight_deltas(up, perturb(up)), "rel")
    assert m.modules == MODULES and m.layers == tuple(range(8))
    assert m.values.shape == (9, 8)
    o = m.row("o_proj")
    assert np.isnan(o[4]) and np.isnan(o[5]) and np.isfinite(np.delete(o, [4, 5])).all()
    assert set(m.extras) == {"embed_tokens", "norm", "lm_head"}


def test_csv_round_trip(tmp_path):
    sd = random_state(2)
    rows = weight_deltas(sd, perturb(sd))
    write_csv(rows, tmp_path / "d.csv")
    back = read_csv(tmp_path / "d.csv")
    header = (tmp_path / "d.csv").read_text().splitlines()[0]
    assert header == "layer,module,l2,rel,mean_abs,cos,fill"
    assert [(r.layer, r.module, r.l2, r.rel, r.cos, r.fill) for r in back] == \
           [(r.layer, r.module, r.l2, r.rel, r.cos, r.fill) for r in rows]


# --- fill on an upscale -----------------------------------------------------------------------


def test_fill_on_a_hand_made_upscale():
    sd = random_state(6)
    up = upscale_state(sd, ORDER, DUPS)
    tuned = perturb(up, scale=0.05)
    lm = hand_layer_map(ORDER, DUPS, SLICES)
    rows = weight_deltas(up, tuned, layer_map=lm)
    for i, src in ((4, 2), (5, 3)):
        for m, path in (("o_proj", "self_attn.o_proj"), ("down_proj", "mlp.down_proj")):
            w = tuned[f"model.layers.{i}.{path}.weight"]
            w_src = up[f"model.layers.{src}.{path}.weight"]  # the orig copy, base side
            assert row(rows, i, m).fill == pytest.approx(float(w.norm() / w_src.norm()), rel=1e-5)
            assert row(rows, i, m).rel is None
    filled = {(r.layer, r.module) for r in rows if r.fill is not None}
    assert filled == {(4, "o_proj"), (4, "down_proj"), (5, "o_proj"), (5, "down_proj")}


def test_a_layer_map_of_another_depth_is_refused():
    up = upscale_state(random_state(6), ORDER, DUPS)
    with pytest.raises(UplabError, match="layer map has 6 layers but BASE has 8"):
        weight_deltas(up, perturb(up), layer_map=LayerMap.identity(6))


# --- checkpoints: streaming, sharding, dtypes -------------------------------------------------


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    sd0 = random_state(4)
    sd1 = perturb(sd0)
    root = tmp_path_factory.mktemp("pair")
    cfg = {"model_type": "mistral"}
    return sd0, sd1, {
        "single": (write_checkpoint(root / "a1", sd0, config=cfg),
                   write_checkpoint(root / "b1", sd1, config=cfg)),
        "sharded": (write_checkpoint(root / "a3", sd0, shards=3, config=cfg),
                    write_checkpoint(root / "b2", sd1, shards=2, config=cfg)),
    }


def test_sharded_and_single_file_checkpoints_give_the_same_rows(pair):
    sd0, sd1, dirs = pair
    assert len(list(dirs["sharded"][0].glob("*.safetensors"))) == 3
    single = weight_deltas(*dirs["single"], chunk_elems=1000)
    sharded = weight_deltas(*dirs["sharded"], chunk_elems=1000)
    assert single == sharded  # same chunks, same sums: bit for bit
    in_memory = weight_deltas(sd0, sd1)
    assert [(r.layer, r.module) for r in in_memory] == [(r.layer, r.module) for r in single]
    for x, y in zip(in_memory, single, strict=True):
        assert y.l2 == pytest.approx(x.l2, rel=1e-5) and y.cos == pytest.approx(x.cos, rel=1e-4)


def test_a_single_safetensors_file_is_a_checkpoint(pair):
    _, _, dirs = pair
    a, b = dirs["single"]
    assert weight_deltas(a / "model.safetensors", b / "model.safetensors") == weight_deltas(a, b)


def test_a_chunk_outlives_its_closed_checkpoint(pair):
    _, _, dirs = pair
    with Checkpoint(dirs["single"][0]) as ck:
        name = ck.names()[0]
        chunk = next(ck.chunks(name, 10**9))
        want = ck.read(name).flatten()
    assert torch.equal(chunk, want)  # still mapped: reading it does not crash


def test_chunked_reads_are_exact(pair):
    _, _, dirs = pair
    a = dirs["sharded"][0]
    ref = {}
    for f in a.glob("*.safetensors"):
        ref.update(load_file(f))
    with Checkpoint(a) as ck:
        assert set(ck.names()) == set(ref)
        for name in ck.names():
            got = torch.cat([c.clone() for c in ck.chunks(name, 100)])
            assert torch.equal(got, ref[name].flatten()), name
            assert torch.equal(ck.read(name), ref[name])


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_checkpoints(tmp_path, dtype):
    sd0 = {k: v.to(dtype) for k, v in random_state(2).items()}
    sd1 = {k: v.to(dtype) for k, v in perturb(random_state(2), 0.02).items()}
    a = write_checkpoint(tmp_path / "a", sd0, shards=2)
    b = write_checkpoint(tmp_path / "b", sd1)
    got = weight_deltas(a, b, chunk_elems=333)
    want = weight_deltas({k: v.double() for k, v in sd0.items()}, {k: v.double() for k, v in sd1.items()})
    for x, y in zip(want, got, strict=True):
        assert (x.layer, x.module) == (y.layer, y.module)
        for m in ("l2", "rel", "mean_abs", "cos"):
            assert getattr(y, m) == pytest.approx(getattr(x, m), rel=1e-5), (x.layer, x.module, m)


def test_mixed_dtypes_compare_values_not_bits(tmp_path):
    sd = {k: v.to(torch.bfloat16) for k, v in random_state(1).items()}
    a = write_checkpoint(tmp_path / "a", sd)
    b = write_checkpoint(tmp_path / "b", {k: v.float() for k, v in sd.items()})
    assert all(r.l2 == 0.0 for r in weight_deltas(a, b))


# --- bad input --------------------------------------------------------------------------------


def test_nan_is_refused_naming_the_tensor_and_side():
    sd0 = random_state(1)
    sd1 = perturb(sd0)
    sd1["model.layers.0.mlp.up_proj.weight"][3, 4] = float("nan")
    with pytest.raises(UplabError, match=r"model\.layers\.0\.mlp\.up_proj\.weight in TUNED has NaN"):
        weight_deltas(sd0, sd1)
    sd0["model.norm.weight"][0] = float("inf")
    with pytest.raises(UplabError, match=r"model\.norm\.weight in BASE has NaN or Inf"):
        weight_deltas(sd0, perturb(random_state(1)))


def test_mismatches_are_refused():
    sd = random_state(2)
    other = dict(sd)
    other["model.layers.1.mlp.up_proj.weight"] = torch.zeros(3, 3)
    with pytest.raises(UplabError, match="has shape"):
        weight_deltas(sd, other)
    missing = {k: v for k, v in sd.items() if "layers.1.mlp.up_proj" not in k}
    with pytest.raises(UplabError, match=r"BASE lacks model\.layers\.1\.mlp\.up_proj\.weight"):
        weight_deltas(missing, sd)
    with pytest.raises(UplabError, match="has 2 layers but TUNED has 4"):
        weight_deltas(sd, random_state(4))


def test_stream_refuses_broken_files(tmp_path, pair):
    _, _, dirs = pair
    src = dirs["sharded"][0]
    # a truncated shard
    bad = tmp_path / "trunc"
    bad.mkdir()
    for f in src.iterdir():
        (bad / f.name).write_bytes(f.read_bytes())
    shard = sorted(bad.glob("*.safetensors"))[0]
    shard.write_bytes(shard.read_bytes()[:-10])
    with pytest.raises(UplabError, match="truncated"):
        Checkpoint(bad)
    # an index entry whose shard lacks the tensor
    index = json.loads((src / "model.safetensors.index.json").read_text())
    name = next(iter(index["weight_map"]))
    index["weight_map"][name] = sorted(f.name for f in src.glob("*.safetensors"))[-1]
    lacking = tmp_path / "lacking"
    lacking.mkdir()
    for f in src.iterdir():
        (lacking / f.name).write_bytes(f.read_bytes())
    (lacking / "model.safetensors.index.json").write_text(json.dumps(index))
    with pytest.raises(UplabError, match="which lacks it"):
        Checkpoint(lacking)
    # garbage
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00not json at all!")
    with pytest.raises(UplabError, match="not valid JSON"):
        Checkpoint(junk)
    save_file({"x": torch.zeros(2)}, tmp_path / "ok.safetensors")
    assert Checkpoint(tmp_path / "ok.safetensors").names() == ["x"]


def test_a_rewritten_file_is_read_again(tmp_path):
    """Headers are parsed once per content (harness.checkpoint.read): a file rewritten in place
    with other tensors, or truncated, is never answered from what was parsed before."""
    f = tmp_path / "w.safetensors"
    save_file({"a": torch.zeros(4)}, str(f))
    assert list(Checkpoint(f).tensors) == ["a"]
    save_file({"b": torch.ones(2, 3)}, str(f))
    with Checkpoint(f) as ck:
        assert list(ck.tensors) == ["b"] and torch.equal(ck.read("b"), torch.ones(2, 3))
    f.write_bytes(f.read_bytes()[:-4])
    with pytest.raises(UplabError, match="truncated"):
        Checkpoint(f)
