"""Test scaffolding: synthetic safetensors checkpoints with real tensor names, for the diff's tests
and benchmarks (which import it as tests.synthetic from the rootdir).

`write_checkpoint` saves any named tensors as an HF-style directory (one file, or `shards`
files and an index). `synthetic_pair` generates a Mistral-like base and a tuned copy
(base + small noise) shard by shard, so even multi-GB pairs are written with one shard in memory.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import torch
from safetensors.torch import save_file

from harness.checkpoint import INDEX, SINGLE


def mistral_shapes(num_layers: int, hidden: int, intermediate: int, kv_dim: int,
                   vocab: int) -> dict[str, tuple[int, ...]]:
    """Tensor names and shapes of a Mistral-style decoder (untied lm_head)."""
    shapes: dict[str, tuple[int, ...]] = {"model.embed_tokens.weight": (vocab, hidden)}
    for i in range(num_layers):
        p = f"model.layers.{i}."
        shapes.update({
            p + "self_attn.q_proj.weight": (hidden, hidden),
            p + "self_attn.k_proj.weight": (kv_dim, hidden),
            p + "self_attn.v_proj.weight": (kv_dim, hidden),
            p + "self_attn.o_proj.weight": (hidden, hidden),
            p + "mlp.gate_proj.weight": (intermediate, hidden),
            p + "mlp.up_proj.weight": (intermediate, hidden),
            p + "mlp.down_proj.weight": (hidden, intermediate),
            p + "input_layernorm.weight": (hidden,),
            p + "post_attention_layernorm.weight": (hidden,),
        })
    shapes["model.norm.weight"] = (hidden,)
    shapes["lm_head.weight"] = (vocab, hidden)
    return shapes


def mistral_config(num_layers: int, hidden: int, intermediate: int, kv_dim: int, vocab: int,
                   head_dim: int = 128) -> dict:
    return {
        "model_type": "mistral", "architectures": ["MistralForCausalLM"],
        "num_hidden_layers": num_layers, "hidden_size": hidden, "intermediate_size": intermediate,
        "num_attention_heads": hidden // head_dim, "num_key_value_heads": kv_dim // head_dim,
        "head_dim": head_dim, "vocab_size": vocab, "tie_word_embeddings": False,
    }


def _shard_groups(items: list[tuple[str, int]], shards: int) -> list[list[str]]:
    """Split names, in order, into `shards` groups of roughly equal bytes."""
    total = sum(n for _, n in items)
    groups: list[list[str]] = [[] for _ in range(max(1, shards))]
    done = 0
    for name, nbytes in items:
        g = min(len(groups) - 1, int(done * len(groups) / max(total, 1)))
        groups[g].append(name)
        done += nbytes
    return [g for g in groups if g]


def write_checkpoint(out: str | Path, tensors: Mapping[str, torch.Tensor] | None = None, *,
                     shards: int = 1, config: dict | None = None) -> Path:
    """Save `tensors` as an HF checkpoint directory: model.safetensors, or shards plus index."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(config or {"model_type": "mistral"}, indent=1))
    items = [(n, t.numel() * t.element_size()) for n, t in tensors.items()]
    groups = _shard_groups(items, shards)
    if len(groups) == 1:
        save_file({n: tensors[n].contiguous() for n in groups[0]}, out / SINGLE)
        return out
    weight_map = {}
    for i, group in enumerate(groups):
        file = f"model-{i + 1:05d}-of-{len(groups):05d}.safetensors"
        save_file({n: tensors[n].contiguous() for n in group}, out / file)
        weight_map.update({n: file for n in group})
    total = sum(n for _, n in items)
    (out / INDEX).write_text(json.dumps({"metadata": {"total_size": total}, "weight_map": weight_map}))
    return out


def synthetic_pair(root: str | Path, *, num_layers: int = 4, hidden: int = 256,
                   intermediate: int = 704, kv_dim: int = 128, vocab: int = 1000,
                   dtype: torch.dtype = torch.bfloat16, shards: int = 2, noise: float = 1e-3,
                   seed: int = 0) -> tuple[Path, Path]:
    """Write root/base and root/tuned (= base + noise·N(0,1)); one shard in memory at a time."""
    root = Path(root)
    shapes = mistral_shapes(num_layers, hidden, intermediate, kv_dim, vocab)
    config = mistral_config(num_layers, hidden, intermediate, kv_dim, vocab,
                            head_dim=min(128, kv_dim))
    config["torch_dtype"] = str(dtype).removeprefix("torch.")
    items = [(n, torch.Size(s).numel() * dtype.itemsize) for n, s in shapes.items()]
    groups = _shard_groups(items, shards)
    gen = torch.Generator().manual_seed(seed)
    weight_map: dict[str, str] = {}
    dirs = (root / "base", root / "tuned")
    for d in dirs:
        d.mkdir(parents=True, exist_ok=True)
        (d / "config.json").write_text(json.dumps(config, indent=1))
    for i, group in enumerate(groups):
        file = SINGLE if len(groups) == 1 else f"model-{i + 1:05d}-of-{len(groups):05d}.safetensors"
        base = {}
        for n in group:
            t = torch.empty(shapes[n], dtype=torch.float32)
            t.normal_(0.0, 0.02, generator=gen) if "norm" not in n else t.fill_(1.0)
            base[n] = t.to(dtype)
        save_file(base, dirs[0] / file)
        for n in group:  # in place: the base copy is already on disk
            t = base[n].float()
            t.add_(torch.empty_like(t).normal_(0.0, noise, generator=gen))
            base[n] = t.to(dtype)
        save_file(base, dirs[1] / file)
        del base
        weight_map.update({n: file for n in group})
    if len(groups) > 1:
        total = sum(n for _, n in items)
        for d in dirs:
            (d / INDEX).write_text(json.dumps({"metadata": {"total_size": total},
                                               "weight_map": weight_map}))
    return dirs
