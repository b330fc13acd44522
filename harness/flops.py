"""Model FLOPs per trained token and MFU, from an HF config alone (no weights).

Convention (PaLM, Chowdhery et al. 2022, appendix B): a trained token costs 6·N FLOPs for the
dense matmuls (forward 2·N, backward 4·N), N counting every projection plus the lm_head (even
when it is tied to the embeddings; the embedding lookup itself is free), plus 12·L·h_attn·s for
attention's score and value matmuls (h_attn = heads · head_dim, s = sequence length), with the
whole s×s score matrix counted: NOT halved for the causal mask, as in PaLM, nanoGPT and
torchtitan, so MFU figures compare with theirs. Biases, norms, activations and the softmax are
left out; so is a sliding window (every preset's window is longer than its max_positions).
"""

from __future__ import annotations

from harness.errors import UplabError

# Dense bf16 tensor-core peaks (no sparsity), FLOP/s, by a fragment of torch.cuda.get_device_name().
# The longest matching fragment wins, so "H100 PCIe" beats "H100", "A100" beats "A10", "L40S" beats "L4".
PEAK_BF16 = {
    "H100": 989e12, "H100 PCIe": 756e12, "H200": 989e12, "A100": 312e12,
    "L40S": 362e12, "L40": 181e12, "L4": 121e12, "A10": 125e12,
}

# Which projections carry a bias in each family: True always, a string names the config flag.
_BIASES: dict[str, dict[str, bool | str]] = {
    "mistral": {},
    "llama": {"qkv": "attention_bias", "o": "attention_bias", "mlp": "mlp_bias"},
    "qwen2": {"qkv": True},
}
_FIELDS = ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
           "num_attention_heads", "num_key_value_heads")


def _dims(config) -> dict[str, int]:
    kind = getattr(config, "model_type", None)
    if kind not in _BIASES:
        raise UplabError(f"no FLOP count for architecture {kind!r}; uplab counts {', '.join(sorted(_BIASES))}")
    d = {f: getattr(config, f, None) for f in _FIELDS}
    bad = [f for f, v in d.items() if not isinstance(v, int) or v < 1]
    if bad:
        raise UplabError(f"{kind} config needs positive integer {', '.join(bad)}; got "
                         f"{', '.join(f'{f}={d[f]!r}' for f in bad)}")
    d["head_dim"] = getattr(config, "head_dim", None) or d["hidden_size"] // d["num_attention_heads"]
    return d


def _has_bias(config, part: str) -> bool:
    flag = _BIASES[config.model_type].get(part, False)
    return bool(getattr(config, flag, False)) if isinstance(flag, str) else flag


def _layer_shapes(config) -> dict[str, tuple[int, int]]:
    """(in, out) of every projection in one decoder layer."""
    d = _dims(config)
    h, q, kv = d["hidden_size"], d["num_attention_heads"] * d["head_dim"], d["num_key_value_heads"] * d["head_dim"]
    i = d["intermediate_size"]
    return {"q": (h, q), "k": (h, kv), "v": (h, kv), "o": (q, h), "gate": (h, i), "up": (h, i), "down": (i, h)}


def matmul_params(config) -> int:
    """N of 6·N: weights of every projection and the lm_head (tied or not); no embeddings, biases, norms."""
    d = _dims(config)
    per_layer = sum(a * b for a, b in _layer_shapes(config).values())
    return d["num_hidden_layers"] * per_layer + d["vocab_size"] * d["hidden_size"]


def param_count(config) -> int:
    """Every parameter of the HF model, a tied lm_head once: sum(p.numel()) without building it."""
    d = _dims(config)
    shapes = _layer_shapes(config)
    part = {"q": "qkv", "k": "qkv", "v": "qkv", "o": "o", "gate": "mlp", "up": "mlp", "down": "mlp"}
    biases = sum(out for name, (_, out) in shapes.items() if _has_bias(config, part[name]))
    norms = 2 * d["hidden_size"]
    per_layer = sum(a * b for a, b in shapes.values()) + biases + norms
    embed = d["vocab_size"] * d["hidden_size"]
    head = 0 if getattr(config, "tie_word_embeddings", False) else embed
    return d["num_hidden_layers"] * per_layer + embed + head + d["hidden_size"]


def attention_flops_per_token(config, seq_len: int) -> float:
    """12·L·h_attn·s: QKᵀ and AV, forward and backward, full s×s (no causal halving, as PaLM)."""
    if not isinstance(seq_len, int) or seq_len < 1:
        raise UplabError(f"sequence length must be a positive integer, got {seq_len!r}")
    d = _dims(config)
    return 12.0 * d["num_hidden_layers"] * d["num_attention_heads"] * d["head_dim"] * seq_len


def flops_per_token(config, seq_len: int) -> float:
    """Training FLOPs per token, PaLM's 6·N + 12·L·h_attn·s with the causal mask not halved."""
    return 6.0 * matmul_params(config) + attention_flops_per_token(config, seq_len)


def peak_bf16(device_name: str) -> float | None:
    """Dense bf16 peak of a device by name; None for a device not in PEAK_BF16."""
    hits = [k for k in PEAK_BF16 if k in device_name]
    return PEAK_BF16[max(hits, key=len)] if hits else None


def mfu(tokens_per_s: float, config, seq_len: int, device_name: str) -> float | None:
    """Model FLOPs utilisation against the device's dense bf16 peak; None for an unknown device."""
    if not tokens_per_s >= 0:  # also refuses NaN
        raise UplabError(f"tokens per second must be >= 0, got {tokens_per_s!r}")
    per_token = flops_per_token(config, seq_len)  # validates the config even for an unknown device
    peak = peak_bf16(device_name)
    return per_token * tokens_per_s / peak if peak else None
