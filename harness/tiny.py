"""Decoder presets of the `tiny` and `small` scales (DESIGN §4), built from a seed, saved like any HF checkpoint.

`tiny` (~0.03M parameters, 10 layers, hidden 16) pre-trains on one CPU thread in ~2/3 of the
16-layer preset's ~35 s;
`tiny8` is the 8-layer, hidden-64 preset it replaced (~0.3M). `small` (16 layers, hidden
256, ~16M parameters) is what the claim suite trains on one GPU: its 104 runs keep their fp32
snapshots in the run cache (63 MB each, ~30 GB for the suite), which a wider model would not fit on
a GPU runner's disk. `small-512` (16 × 512, ~50M) and `small-32` (32 × 384, ~55M) are the sizes
the MFU benchmark trains. Widths are multiples of 128 and heads are 64 wide, shapes that bf16
tensor-core matmuls and flash attention kernels handle without padding. All share the byte vocabulary below, so the same data and tokenizer serve both.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch
import transformers

from harness.errors import UplabError

# Byte-level vocabulary: ids 0..255 are bytes; then three specials.
BOS_ID, EOS_ID, PAD_ID = 256, 257, 258
VOCAB_SIZE = 259

_CONFIG_CLASSES = {
    "mistral": transformers.MistralConfig,
    "llama": transformers.LlamaConfig,
    "qwen2": transformers.Qwen2Config,
}


@dataclass(frozen=True)
class TinySpec:
    """Hyperparameters of a preset decoder; the defaults (`tiny8`) give ~0.3M parameters at 8 layers."""

    arch: str = "mistral"
    num_layers: int = 8
    hidden: int = 64
    intermediate: int = 128
    heads: int = 4
    kv_heads: int = 2
    max_positions: int = 256
    tie_embeddings: bool = True

    def hf_config(self) -> transformers.PretrainedConfig:
        if self.arch not in _CONFIG_CLASSES:
            raise UplabError(
                f"no preset for architecture {self.arch!r}; choose one of "
                f"{', '.join(sorted(_CONFIG_CLASSES))}"
            )
        if self.hidden % self.heads or self.heads % self.kv_heads or (self.hidden // self.heads) % 2:
            raise UplabError(
                f"decoder spec needs hidden % heads == 0, an even head width (hidden / heads, for "
                f"rotary embeddings) and heads % kv_heads == 0, got hidden={self.hidden}, "
                f"heads={self.heads}, kv_heads={self.kv_heads}"
            )
        config = _CONFIG_CLASSES[self.arch](
            vocab_size=VOCAB_SIZE,
            hidden_size=self.hidden,
            intermediate_size=self.intermediate,
            num_hidden_layers=self.num_layers,
            num_attention_heads=self.heads,
            num_key_value_heads=self.kv_heads,
            max_position_embeddings=self.max_positions,
            tie_word_embeddings=self.tie_embeddings,
            bos_token_id=BOS_ID,
            eos_token_id=EOS_ID,
            pad_token_id=PAD_ID,
        )
        # SDPA is the default attention everywhere; eager would only slow the tiny runs.
        config._attn_implementation = "sdpa"
        return config


# Spelled out rather than changing TinySpec's defaults: a run's hash names its preset, not the
# preset's dimensions, so the tiny presets' values must never move under cached runs. (When `tiny`
# went from 8 to 16 layers, tasks.VERSION 4, which every run hash carries, made the old runs miss.)
_SMALL = dict(num_layers=16, hidden=256, intermediate=1024, heads=4, kv_heads=2, max_positions=1024)

# The tiny world's depth (docs/tiny-world.md, tasks.VERSION 6): 10 layers, so the seed's
# duplicated range [19, 41) of 55 maps to a 4-layer slice [3, 7) and "the first two layers" are
# 20 % of the model (the seed's are 2/55 = 3.6 %). A quarter of the 8-layer preset's width:
# narrow layers each do less, so the composition spreads over more of them (median single-layer
# skip cost 0.05-0.19 nats at width 16 against 0.003-0.011 at 32, seeds 0-2). At 16 layers
# (VERSION 5) the mapped range did little on half the seeds; at 10 every seed needs it
# (skip-cost median >= 0.17 nats there, 12 of 12) and a step costs ~2/3 as much.
_TINY = dict(num_layers=10, hidden=16, intermediate=32, heads=2, kv_heads=1)

PRESETS: dict[str, TinySpec] = {
    "tiny": TinySpec(arch="mistral", **_TINY),
    "tiny-llama": TinySpec(arch="llama", **_TINY),
    "tiny-qwen2": TinySpec(arch="qwen2", **_TINY),
    # The 8-layer world before issue 12 (3-layer slices, one-hop tasks): kept for comparisons.
    "tiny8": TinySpec(arch="mistral"),
    "small": TinySpec(arch="mistral", **_SMALL),
    "small-llama": TinySpec(arch="llama", **_SMALL),
    "small-qwen2": TinySpec(arch="qwen2", **_SMALL),
    "small-512": TinySpec(arch="mistral", num_layers=16, hidden=512, intermediate=1536, heads=8, kv_heads=4,
                          max_positions=1024),
    "small-32": TinySpec(arch="mistral", num_layers=32, hidden=384, intermediate=1152, heads=6, kv_heads=2,
                         max_positions=1024),
    # SmolLM2-135M's decoder (the `real` scale's base) with the byte vocabulary: what the GPU
    # benchmark of the `real` gpu profile times where the base's 94 MB wheel cannot travel
    # (benchmarks/bench_real_gpu.py); `smollm2-135m@54` is its contiguous upscale's depth.
    "smollm2-135m": TinySpec(arch="llama", num_layers=30, hidden=576, intermediate=1536, heads=9, kv_heads=3,
                             max_positions=1024),
}


def build(spec: TinySpec, seed: int) -> transformers.PreTrainedModel:
    """A freshly initialised model; the same (spec, seed) gives the same weights."""
    config = spec.hf_config()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = transformers.AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    return model.eval()


def save(spec: TinySpec, seed: int, out: str | Path) -> Path:
    """Build and save as a safetensors HF checkpoint, with the spec and seed beside it."""
    out = Path(out)
    model = build(spec, seed)
    model.save_pretrained(out)
    (out / "uplab_tiny.json").write_text(
        json.dumps({"spec": asdict(spec), "seed": seed}, indent=2)
    )
    return out


def preset(name: str, **overrides) -> TinySpec:
    """A preset by name; `NAME@L` is NAME at depth L (e.g. a base pre-trained natively at an
    upscale's depth, the control that separates an upscale's room from its parameter count)."""
    base, _, layers = name.partition("@")
    if base not in PRESETS:
        raise UplabError(f"unknown preset {base!r}; choose one of {', '.join(PRESETS)}")
    if layers:
        if not layers.isdigit() or not 1 <= int(layers) <= 4096:
            raise UplabError(f"preset {name!r}: the depth after '@' must be an integer in [1, 4096]")
        overrides = {"num_layers": int(layers), **overrides}
    return replace(PRESETS[base], **overrides)
