"""N decoders as one: every weight gets a leading seed dimension, one forward computes all N.

The N per-seed models (HF, or peft-wrapped for LoRA) stay alive: their parameters are turned
into views of row i of the stacked tensors, so held-out scoring, snapshots and tracked weight
norms read each seed through the ordinary per-seed code (harness.train.evaluate,
modes.effective_state_dict) at no copy, and see every optimizer update.

The forward re-implements the Mistral / Llama / Qwen2 decoder (RMSNorm, RoPE from the model's
own rotary module, GQA attention through SDPA, SiLU-gated MLP, tied or separate lm_head, optional
q/k/v biases, LoRA as W·x + s·B·A·x) with batched matmuls over the seed dimension; attention folds
(seed, batch) into SDPA's batch. `check_forward` compares it with each model's own HF forward, so
an architecture detail this file does not know about is caught before training, not after.
"""

from __future__ import annotations

import math
from contextlib import nullcontext
from functools import lru_cache

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

from harness.data import IGNORE
from harness.train import modes

FAMILIES = ("mistral", "llama", "qwen2")


class StackMismatch(ValueError):
    """The stacked forward would not compute what the per-seed model computes."""


def unsupported(model, max_len: int) -> str | None:
    """Why `model` (HF, unwrapped) cannot be stacked by this forward, or None when it can."""
    c = model.config
    if c.model_type not in FAMILIES:
        return f"model type {c.model_type!r} is not one of {', '.join(FAMILIES)}"
    if getattr(c, "hidden_act", "silu") != "silu":
        return f"hidden_act {c.hidden_act!r} (the stacked MLP is SiLU-gated)"
    rope = (getattr(c, "rope_parameters", None) or {}).get("rope_type", "default")
    if rope != "default":
        return f"rope_type {rope!r} (only default RoPE is stacked)"
    if getattr(c, "attention_dropout", 0.0):
        return "attention dropout (its random masks cannot follow each seed's own generator)"
    window = getattr(c, "sliding_window", None)
    if window is not None and getattr(c, "use_sliding_window", True) and window < max_len:
        return f"sliding window {window} shorter than the sequences ({max_len})"
    return None


def _key(name: str) -> str:
    """HF tensor name of a parameter; LoRA factors as '<module>.lora_A' / '<module>.lora_B'."""
    for f in ("lora_A", "lora_B"):
        if f".{f}." in name:
            return name.split(f".{f}.")[0] + f".{f}"
    return name.replace(".base_layer.", ".")


def named_parameters(model) -> dict[str, torch.nn.Parameter]:
    """Key -> parameter of one (prepared) model; a tied lm_head appears once, as embed_tokens."""
    return {_key(n): p for n, p in modes.base_model(model).named_parameters()}


class Stacked:
    """The N prepared models' parameters as [N, ...] leaf tensors, and their batched forward."""

    def __init__(self, models: list, device: torch.device):
        self.models = models
        self.device = device
        per = [named_parameters(m) for m in models]
        keys = list(per[0])
        if any(list(p) != keys for p in per[1:]):
            raise StackMismatch("models to stack differ in their parameters")
        self.params: dict[str, torch.Tensor] = {}
        for k in keys:
            t = torch.stack([p[k].detach() for p in per]).to(device)
            if per[0][k].requires_grad:
                t.requires_grad_(True)
            self.params[k] = t
            for i, p in enumerate(per):  # each model now reads (and scoring sees) row i
                p[k].data = t.data[i]
        self.trainable = {k: t for k, t in self.params.items() if t.requires_grad}
        inner = modes.base_model(models[0])
        self.config = inner.config
        self.rotary = inner.model.rotary_emb.to(device)
        lora = modes._lora_layers(models[0]) if inner is not models[0] else {}
        self.scaling = {}
        for name, layer in lora.items():
            for adapter in layer.active_adapters:
                if not isinstance(layer.lora_dropout[adapter], torch.nn.Identity):
                    raise StackMismatch("LoRA dropout draws random masks per seed; it cannot be stacked")
                self.scaling[name] = layer.scaling[adapter]
        c = self.config
        self.heads = c.num_attention_heads
        self.kv_heads = c.num_key_value_heads
        self.head_dim = getattr(c, "head_dim", None) or c.hidden_size // c.num_attention_heads
        self.eps = c.rms_norm_eps
        self.tied = "lm_head.weight" not in self.params
        self.n = len(models)

    # -- pieces of the forward ---------------------------------------------------------------
    def _norm(self, h: torch.Tensor, key: str) -> torch.Tensor:
        # HF's RMSNorm: statistics in fp32, scaled by the weight in the input dtype
        dtype = h.dtype
        x = h.float()
        x = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)
        w = self.params[key]
        return w.view(w.shape[0], *([1] * (h.dim() - 2)), w.shape[-1]) * x.to(dtype)

    def _linear(self, x: torch.Tensor, mod: str) -> torch.Tensor:
        """x [N, R, in] -> [N, R, out]; LoRA adds s·(x·Aᵀ)·Bᵀ as peft computes it."""
        w = self.params[f"{mod}.weight"]
        b = self.params.get(f"{mod}.bias")
        y = torch.baddbmm(b.unsqueeze(1), x, w.transpose(1, 2)) if b is not None else torch.bmm(x, w.transpose(1, 2))
        if mod in self.scaling:
            a, bb = self.params[f"{mod}.lora_A"], self.params[f"{mod}.lora_B"]
            y = y + torch.bmm(torch.bmm(x, a.transpose(1, 2)), bb.transpose(1, 2)) * self.scaling[mod]
        return y

    def logits(self, ids: torch.Tensor) -> torch.Tensor:
        """ids [N, B, T] -> logits [N, B, T, V]."""
        n, b, t = ids.shape
        emb = self.params["model.embed_tokens.weight"]  # [N, V, H]
        vocab, hidden = emb.shape[1], emb.shape[2]
        offset = (torch.arange(n, device=ids.device) * vocab).view(n, 1, 1)
        h = F.embedding(ids + offset, emb.reshape(n * vocab, hidden)).view(n, b * t, hidden)
        pos = torch.arange(t, device=ids.device).unsqueeze(0)
        cos, sin = self.rotary(h, pos)  # [1, T, D], as the HF model computes them
        with _attention_kernel(ids.device):
            h = self._layers(h, _rope_tables(cos, sin, self.heads), _rope_tables(cos, sin, self.kv_heads), n, b, t)
        h = self._norm(h, "model.norm.weight")
        head = emb if self.tied else self.params["lm_head.weight"]
        return torch.bmm(h, head.transpose(1, 2)).view(n, b, t, -1)

    def _layers(self, h: torch.Tensor, rq: tuple, rk: tuple, n: int, b: int, t: int) -> torch.Tensor:
        hd, nh, nkv = self.head_dim, self.heads, self.kv_heads
        for i in range(self.config.num_hidden_layers):
            p = f"model.layers.{i}."
            x = self._norm(h, p + "input_layernorm.weight")
            q = _rope(self._linear(x, p + "self_attn.q_proj").view(n * b, t, nh * hd), *rq, nh).transpose(1, 2)
            k = _rope(self._linear(x, p + "self_attn.k_proj").view(n * b, t, nkv * hd), *rk, nkv).transpose(1, 2)
            v = self._linear(x, p + "self_attn.v_proj").view(n * b, t, nkv, hd).transpose(1, 2)
            if nkv != nh:  # as HF's sdpa path does without enable_gqa
                k = k.repeat_interleave(nh // nkv, dim=1)
                v = v.repeat_interleave(nh // nkv, dim=1)
            a = _attention(q, k, v, scale=hd ** -0.5)
            a = a.transpose(1, 2).reshape(n, b * t, nh * hd)
            h = h + self._linear(a, p + "self_attn.o_proj")
            x = self._norm(h, p + "post_attention_layernorm.weight")
            gate = self._linear(x, p + "mlp.gate_proj")
            up = self._linear(x, p + "mlp.up_proj")
            h = h + self._linear(F.silu(gate) * up, p + "mlp.down_proj")
        return h

    def losses(self, ids: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Per-seed mean next-token loss over the labelled positions (HF's ForCausalLMLoss): [N]."""
        logits = self.logits(ids).float()
        target = F.pad(labels, (0, 1), value=IGNORE)[..., 1:]
        ce = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1),
                             ignore_index=IGNORE, reduction="none").view(ids.shape[0], -1)
        count = (target != IGNORE).view(ids.shape[0], -1).sum(1)
        return ce.sum(1) / count

    # -- gradients ---------------------------------------------------------------------------
    def grad_norms(self) -> torch.Tensor:
        """Per-seed global L2 norm of the trainable gradients: [N]."""
        sq = [t.grad.flatten(1).float().pow(2).sum(1) for t in self.trainable.values() if t.grad is not None]
        return torch.stack(sq).sum(0).sqrt()

    def clip_(self, max_norm: float) -> torch.Tensor:
        """Each seed's gradients clipped to `max_norm` as torch's clip_grad_norm_ does; the
        unclipped per-seed norms are returned."""
        norms = self.grad_norms()
        if max_norm != float("inf"):
            coef = (max_norm / (norms + 1e-6)).clamp(max=1.0)
            for t in self.trainable.values():
                if t.grad is not None:
                    t.grad.mul_(coef.view(-1, *([1] * (t.dim() - 1))).to(t.grad.dtype))
        return norms

    def tracked_grads(self, names: list[str]) -> list[dict[str, float | None]]:
        """Per seed: modes.tracked_grads's numbers (a LoRA module: its factors' joint norm)."""
        out: list[dict[str, float | None]] = [{} for _ in range(self.n)]
        for name in names:
            mod = name.removesuffix(".weight")
            keys = [f"{mod}.lora_A", f"{mod}.lora_B"] if mod in self.scaling else [name]
            grads = [self.params[k].grad for k in keys if k in self.params and self.params[k].grad is not None]
            sq = torch.stack([g.flatten(1).float().pow(2).sum(1) for g in grads]).sum(0).sqrt() if grads else None
            for i in range(self.n):
                out[i][name] = float(sq[i]) if sq is not None else None
        return out


def _attention_kernel(device: torch.device):
    """SDPA's math kernel when training on the CPU, its default (flash) otherwise.

    At the tiny world's heads (8 wide, ~20 positions) the CPU flash kernel's backward is slow:
    with the math kernel a stacked training step of 12 seeds took ~8 % less time alone on the
    machine (28 layers: 254-264 against 276-283 ms) and 4-7 % in the suite's two pre-trainings,
    while a forward without gradients (held-out scoring) is fastest with flash (0.81 against
    1.04 ms per layer). The two agree to ~1e-6, not bit for bit, and training amplifies the
    difference (docs/tiny-world.md, "Engine changes"): runs trained before this choice (run
    SCHEMA uplab.run/1) are not reused. A differentiated fp32 forward computes the math kernel's
    numbers through `_math_attention` (faster, the same bits); the context still picks the kernel
    for any other dtype.
    """
    if device.type == "cpu" and torch.is_grad_enabled():
        return sdpa_kernel(SDPBackend.MATH)
    return nullcontext()


def _attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float) -> torch.Tensor:
    """Causal attention [B, H, T, D]; a differentiated fp32 forward on the CPU (outside autocast,
    which would cast the replica's ops one by one) takes `_math_attention`."""
    if (q.device.type == "cpu" and q.dtype == torch.float32 and torch.is_grad_enabled()
            and not torch.is_autocast_enabled("cpu")):
        return _math_attention(q, k, v, scale)
    return F.scaled_dot_product_attention(q, k, v, is_causal=q.shape[-2] > 1, scale=scale)


def _math_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float) -> torch.Tensor:
    """SDPA's math kernel (aten's _scaled_dot_product_attention_math) op for op, less its
    _safe_softmax guard, which zeroes rows masked out entirely and which a causal mask never has.

    The same bits forward and backward (tests/test_stacked_ops.py compares them, and training
    steps), ~9 % less time a stacked tiny training step: at ~20 positions the guard's isneginf /
    all / where over the [B, H, T, T] scores cost about as much as the softmax itself.
    """
    root = math.sqrt(scale)  # the kernel scales q and k by sqrt(scale) each, in double, as here
    s = torch.matmul(q * root, k.transpose(-2, -1) * root)
    t = q.shape[-2]
    if t > 1:
        s.add_(_causal_mask(t, s.dtype, q.device))
    return torch.matmul(torch.softmax(s, -1), v)


@lru_cache(maxsize=8)
def _causal_mask(t: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """[T, T]: 0 on and below the diagonal, -inf above; built once, not per layer and step (read only)."""
    keep = torch.ones(t, t, dtype=torch.bool, device=device).tril()
    return torch.zeros(t, t, dtype=dtype, device=device).masked_fill_(~keep, float("-inf"))


def _rope_tables(cos: torch.Tensor, sin: torch.Tensor, heads: int) -> tuple[torch.Tensor, torch.Tensor]:
    """HF's cos / sin [1, T, D] as [1, T, heads·D] tables for `_rope`; sin's first half negated."""
    half = sin.shape[-1] // 2
    signed = torch.cat((-sin[..., :half], sin[..., half:]), dim=-1)
    return cos.repeat(1, 1, heads), signed.repeat(1, 1, heads)


def _rope(x: torch.Tensor, cos: torch.Tensor, signed_sin: torch.Tensor, heads: int) -> torch.Tensor:
    """HF's rotary embedding of x [R, T, heads·D] as [R, T, heads, D]: the same bits.

    HF computes x·cos + rotate_half(x)·sin with rotate_half(x) = (-x₂, x₁); here the halves are
    swapped and the sign sits in the table, (-x₂)·s₁ = x₂·(-s₁) exactly. Both products run over
    [R, T, heads·D] against a table broadcast only over R: broadcasting a [1, T, 1, D] table over
    heads of D = 8 made each product ~12x slower (together with the rotation, ~10 % of a tiny step).
    """
    r, t, width = x.shape
    return (x * cos + _swap_halves(x.view(r, t, heads, width // heads)).view(r, t, width) * signed_sin).view(
        r, t, heads, width // heads)


def _swap_halves(x: torch.Tensor) -> torch.Tensor:
    return x.roll(x.shape[-1] // 2, dims=-1)


@torch.no_grad()
def check_forward(stacked: Stacked, ids: torch.Tensor, atol: float = 1e-4) -> float:
    """Largest |stacked logits - each model's own HF forward| on `ids` [N, B, T]; raises above atol."""
    ours = stacked.logits(ids).float()
    worst = 0.0
    for i, m in enumerate(stacked.models):
        ref = m(input_ids=ids[i]).logits.float()
        worst = max(worst, float((ours[i] - ref).abs().max()))
    if worst > atol:
        raise StackMismatch(f"stacked forward differs from the HF forward by {worst:.2e} (> {atol:g})")
    return worst
