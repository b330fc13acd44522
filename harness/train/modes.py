"""Training modes (full, LoRA, freeze) and the effective weights every mode snapshots.

LoRA on a zero-initialised module (a duplicate's o_proj/down_proj): the layer computes
(W + s·B·A)x with W = 0 and B = 0 at the start, A random. dL/dB = s·g·(Ax)ᵀ is non-zero, so
B moves on the first step; dL/dA = s·Bᵀ·g·xᵀ is zero until B has moved, so A starts moving on
the second. The LoRA product therefore gets gradient although W and B are both zero; the
duplicate's other LoRA modules (q/k/v, gate/up) get none at step 0, because their output only
reaches the residual stream through o_proj/down_proj, whose effective weight is still 0.
After training, the duplicate's o_proj holds s·B·A only: a rank-r matrix, whatever W was.
"""

from __future__ import annotations

import warnings
from typing import Literal

import torch
from pydantic import Field

from harness import arch as arch_facts
from harness.errors import UplabError
from harness.schema import Frozen

ALL_LINEAR = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


class Full(Frozen):
    """Every parameter trains."""

    kind: Literal["full"] = "full"


class Lora(Frozen):
    """peft LoRA adapters on `targets` (short module names), optionally only in `layers`."""

    kind: Literal["lora"] = "lora"
    r: int = Field(8, gt=0)
    alpha: float = Field(16.0, gt=0)
    targets: tuple[str, ...] = ALL_LINEAR
    layers: tuple[int, ...] | None = None  # None: every layer
    dropout: float = Field(0.0, ge=0, lt=1)


class Freeze(Frozen):
    """The listed layers do not train; with `embeddings`, neither do embed_tokens, norm, lm_head.

    LLaMA Pro trains only its new blocks: Freeze(layers=<every orig layer>, embeddings=True).
    """

    kind: Literal["freeze"] = "freeze"
    layers: tuple[int, ...]
    embeddings: bool = True


Mode = Full | Lora | Freeze


def _layer_of(name: str, facts) -> int | None:
    hit = facts.split(name)
    return hit[0] if hit else None


def prepare(model, mode) -> torch.nn.Module:
    """The model set up for `mode` (LoRA wraps it with peft; the others set requires_grad)."""
    facts = arch_facts.get(model.config.model_type)
    depth = model.config.num_hidden_layers
    layers = getattr(mode, "layers", None) or ()
    bad = [i for i in layers if not 0 <= i < depth]
    if bad:
        raise UplabError(f"{mode.kind} layers {bad} are outside the model's {depth} layers (0..{depth - 1})")
    if isinstance(mode, Lora):
        import peft

        unknown = set(mode.targets) - set(facts.modules)
        if unknown:
            raise UplabError(f"LoRA targets {sorted(unknown)} are not modules of {facts.name}; "
                             f"choose from {', '.join(ALL_LINEAR)}")
        cfg = peft.LoraConfig(r=mode.r, lora_alpha=mode.alpha, lora_dropout=mode.dropout,
                              target_modules=list(mode.targets), bias="none",
                              layers_to_transform=list(mode.layers) if mode.layers else None)
        with warnings.catch_warnings():  # peft calls a transformers API deprecated in v5
            warnings.simplefilter("ignore", FutureWarning)
            return peft.get_peft_model(model, cfg)
    model.requires_grad_(True)
    if isinstance(mode, Freeze):
        frozen = set(mode.layers)
        for name, p in model.named_parameters():
            layer = _layer_of(name, facts)
            if (layer in frozen) if layer is not None else mode.embeddings:
                p.requires_grad_(False)
    if not any(p.requires_grad for p in model.parameters()):
        raise UplabError(f"mode {mode!r} leaves no parameter to train; freeze fewer layers")
    return model


def _lora_layers(model) -> dict[str, object]:
    """HF module name -> peft LoRA layer, for a peft-wrapped model."""
    from peft.tuners.lora import LoraLayer

    inner = model.get_base_model()
    return {n: m for n, m in inner.named_modules() if isinstance(m, LoraLayer)}


def base_model(model):
    """The HF model under a peft wrapper (the model itself otherwise)."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def effective_state_dict(model) -> dict[str, torch.Tensor]:
    """HF-named fp32 CPU weights as the model computes them: LoRA merged as W + s·B·A.

    The caller's model is not modified (no merge_and_unload). A tied lm_head is left out, as
    save_pretrained does, so embed_tokens carries it.
    """
    inner = base_model(model)
    lora = _lora_layers(model) if inner is not model else {}
    out: dict[str, torch.Tensor] = {}
    with torch.no_grad():
        for name, t in inner.state_dict().items():
            if ".lora_" in name:
                continue
            out[name.replace(".base_layer.", ".")] = t.detach().float().cpu().clone()
        for mod_name, layer in lora.items():
            w = layer.base_layer.weight.detach().float()
            for adapter in layer.active_adapters:
                w = w + layer.get_delta_weight(adapter).detach().float()
            out[f"{mod_name}.weight"] = w.cpu().contiguous()
    if getattr(inner.config, "tie_word_embeddings", False):
        out.pop("lm_head.weight", None)
    return out


def weight_names(model) -> list[str]:
    """HF names of the model's weights, whatever the mode (LoRA wrappers stripped)."""
    names = [n.replace(".base_layer.", ".") for n in base_model(model).state_dict() if ".lora_" not in n]
    return list(dict.fromkeys(names))


def tracked_weights(model, names: list[str]) -> dict[str, torch.Tensor]:
    """Live effective weights of a few tensors (cheap enough to call every step)."""
    inner = base_model(model)
    lora = _lora_layers(model) if inner is not model else {}
    params = dict(inner.named_parameters())
    out = {}
    for name in names:
        mod = name.removesuffix(".weight")
        if mod in lora:
            layer = lora[mod]
            w = layer.base_layer.weight
            for adapter in layer.active_adapters:
                w = w + layer.get_delta_weight(adapter)
            out[name] = w
        else:  # a module LoRA does not adapt may still sit in a peft wrapper (base_layer)
            out[name] = params[name] if name in params else params[name.replace(".weight", ".base_layer.weight")]
    return out


def tracked_grads(model, names: list[str]) -> dict[str, float | None]:
    """Gradient norm per tracked tensor; for LoRA, of its adapter factors (sqrt(|gA|²+|gB|²))."""
    inner = base_model(model)
    lora = _lora_layers(model) if inner is not model else {}
    params = dict(inner.named_parameters())
    out: dict[str, float | None] = {}
    for name in names:
        mod = name.removesuffix(".weight")
        if mod in lora:
            grads = [p.grad for n, p in lora[mod].named_parameters() if "lora_" in n and p.grad is not None]
        else:
            p = params.get(name)
            grads = [p.grad] if p is not None and p.grad is not None else []
        out[name] = float(torch.sqrt(sum((g.float() ** 2).sum() for g in grads))) if grads else None
    return out
