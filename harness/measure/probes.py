"""Functional probes on an in-memory causal LM (DESIGN §6): loss, block influence, ablations, KL.

A *domain* is any iterable of batches; a batch is a LongTensor [B, T] of token ids, a pair
(ids, attention_mask), or a mapping with `input_ids` and optionally `attention_mask`. Every probe
runs in eval mode under `torch.no_grad`, restores the model's train/eval mode afterwards, and
weights each batch by its number of scored tokens, so a domain's answer does not depend on how
it was batched.

Ablations change the model only inside a `with` block and undo the change on the way out, error
or not: `skip_layers` makes decoder layers identity maps (a forward hook hands back the layer's
input), `reset_layers` loads their pre-fine-tune weights from a reference state dict.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from harness.errors import UplabError

Batch = torch.Tensor | tuple[torch.Tensor, torch.Tensor] | Mapping[str, torch.Tensor]


# --- plumbing ---------------------------------------------------------------------------------


def decoder_layers(model: nn.Module) -> nn.ModuleList:
    """The ModuleList of decoder layers of an HF causal LM (Mistral, Llama, Qwen2, ...)."""
    inner = model.get_decoder() if hasattr(model, "get_decoder") else getattr(model, "model", None)
    layers = getattr(inner, "layers", None)
    if not isinstance(layers, nn.ModuleList):
        raise UplabError(f"{type(model).__name__} has no decoder layer list (model.model.layers)")
    return layers


def _unpack(batch: Batch, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    if isinstance(batch, Mapping):
        ids, mask = batch["input_ids"], batch.get("attention_mask")
    elif isinstance(batch, (tuple, list)):
        ids, mask = batch
    else:
        ids, mask = batch, None
    if ids.dim() != 2:
        raise UplabError(f"a batch must be token ids of shape [B, T], got shape {list(ids.shape)}")
    if mask is None:
        mask = torch.ones_like(ids)
    return ids.to(device), mask.to(device)


@contextmanager
def _inference(*models: nn.Module) -> Iterator[None]:
    modes = [m.training for m in models]
    try:
        for m in models:
            m.eval()
        with torch.no_grad():
            yield
    finally:
        for m, mode in zip(models, modes, strict=True):
            m.train(mode)


def _device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def _logits(model: nn.Module, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return model(input_ids=ids, attention_mask=mask, use_cache=False).logits.float()


# --- probes -----------------------------------------------------------------------------------


def domain_loss(model: nn.Module, batches: Iterable[Batch]) -> float:
    """Mean next-token cross-entropy over every scored token of the domain (nats/token).

    Position t predicts token t+1; it is scored when both are real tokens (mask = 1).
    """
    total, count = 0.0, 0
    with _inference(model):
        device = _device(model)
        for batch in batches:
            ids, mask = _unpack(batch, device)
            logits = _logits(model, ids, mask)[:, :-1]
            keep = (mask[:, :-1] * mask[:, 1:]).bool()
            if keep.any():
                total += F.cross_entropy(logits[keep], ids[:, 1:][keep], reduction="sum").item()
                count += int(keep.sum())
    if count == 0:
        raise UplabError("no tokens to score: the domain's batches are empty or fully masked")
    return total / count


def block_influence(model: nn.Module, batches: Iterable[Batch]) -> list[float]:
    """Per decoder layer: 1 − cos(input, output) of its hidden states, mean over real tokens.

    In [0, 2]; 0 for a layer that leaves the residual stream's direction alone (an identity map).
    Read with hooks on the layers themselves: `output_hidden_states` puts the final norm on the
    last entry, which would distort the last layer's value.
    """
    layers = decoder_layers(model)
    sums = [0.0] * len(layers)
    count = 0
    seen: dict[int, torch.Tensor] = {}
    mask_now: list[torch.Tensor] = []

    def before(i):
        def hook(module, args, kwargs):
            seen[i] = args[0] if args else kwargs["hidden_states"]
        return hook

    def after(i):
        def hook(module, args, kwargs, output):
            out = output[0] if isinstance(output, tuple) else output
            dist = 1.0 - F.cosine_similarity(seen.pop(i).float(), out.float(), dim=-1)
            sums[i] += dist[mask_now[0]].sum().item()
        return hook

    handles = []
    try:
        for i, layer in enumerate(layers):
            handles.append(layer.register_forward_pre_hook(before(i), with_kwargs=True))
            handles.append(layer.register_forward_hook(after(i), with_kwargs=True))
        with _inference(model):
            device = _device(model)
            for batch in batches:
                ids, mask = _unpack(batch, device)
                mask_now[:] = [mask.bool()]
                model(input_ids=ids, attention_mask=mask, use_cache=False)
                count += int(mask.sum())
    finally:
        for h in handles:
            h.remove()
    if count == 0:
        raise UplabError("no tokens to score: the domain's batches are empty or fully masked")
    return [s / count for s in sums]


def kl_to_reference(model: nn.Module, reference: nn.Module, batches: Iterable[Batch]) -> float:
    """Mean KL(reference ‖ model) of the next-token distributions, over real tokens (nats)."""
    total, count = 0.0, 0
    with _inference(model, reference):
        device = _device(model)
        for batch in batches:
            ids, mask = _unpack(batch, device)
            logp = F.log_softmax(_logits(model, ids, mask), dim=-1)
            ref_ids, ref_mask = ids.to(_device(reference)), mask.to(_device(reference))
            logq = F.log_softmax(_logits(reference, ref_ids, ref_mask), dim=-1).to(device)
            kl = F.kl_div(logp, logq, log_target=True, reduction="none").sum(-1)
            keep = mask.bool()
            total += kl[keep].sum().item()
            count += int(keep.sum())
    if count == 0:
        raise UplabError("no tokens to score: the domain's batches are empty or fully masked")
    return total / count


# --- ablations --------------------------------------------------------------------------------


def _check_indices(layers: nn.ModuleList, indices: Sequence[int]) -> list[int]:
    out = sorted(set(int(i) for i in indices))
    bad = [i for i in out if not 0 <= i < len(layers)]
    if bad:
        raise UplabError(f"layer {bad[0]} does not exist; the model has layers 0..{len(layers) - 1}")
    return out


@contextmanager
def skip_layers(model: nn.Module, indices: Sequence[int]) -> Iterator[None]:
    """Inside the block, each listed decoder layer returns its input unchanged."""
    layers = decoder_layers(model)

    def identity(module, args, kwargs, output):
        hidden = args[0] if args else kwargs["hidden_states"]
        return (hidden, *output[1:]) if isinstance(output, tuple) else hidden

    handles = [layers[i].register_forward_hook(identity, with_kwargs=True)
               for i in _check_indices(layers, indices)]
    try:
        yield
    finally:
        for h in handles:
            h.remove()


@contextmanager
def reset_layers(model: nn.Module, indices: Sequence[int],
                 reference: Mapping[str, torch.Tensor] | nn.Module) -> Iterator[None]:
    """Inside the block, each listed decoder layer holds the reference's weights for it.

    `reference` is the pre-fine-tune model or its state dict, with the same tensor names.
    """
    ref = reference.state_dict() if isinstance(reference, nn.Module) else reference
    layers = decoder_layers(model)
    names = {id(m): n for n, m in model.named_modules()}
    saved: list[tuple[torch.Tensor, torch.Tensor]] = []
    try:
        with torch.no_grad():
            for i in _check_indices(layers, indices):
                prefix = names[id(layers[i])]
                for pname, p in layers[i].named_parameters():
                    key = f"{prefix}.{pname}"
                    if key not in ref:
                        raise UplabError(f"the reference has no {key}; reset needs the pre-fine-tune "
                                         "weights of the same architecture")
                    if tuple(ref[key].shape) != tuple(p.shape):
                        raise UplabError(f"{key} has shape {list(ref[key].shape)} in the reference "
                                         f"but {list(p.shape)} in the model")
                    saved.append((p, p.detach().clone()))
                    p.copy_(ref[key])
        yield
    finally:
        with torch.no_grad():
            for p, old in saved:
                p.copy_(old)


def ablation_loss(
    model: nn.Module,
    batches: Iterable[Batch],
    indices: Sequence[int],
    *,
    mode: Literal["skip", "reset"] = "skip",
    reference: Mapping[str, torch.Tensor] | nn.Module | None = None,
) -> float:
    """Domain loss with the listed layers skipped, or reset to `reference` (needed for reset)."""
    if mode == "skip":
        ablated = skip_layers(model, indices)
    elif mode == "reset":
        if reference is None:
            raise UplabError("mode='reset' needs the pre-fine-tune reference (model or state dict)")
        ablated = reset_layers(model, indices, reference)
    else:
        raise UplabError(f"unknown ablation mode {mode!r}; choose 'skip' or 'reset'")
    with ablated:
        return domain_loss(model, batches)
