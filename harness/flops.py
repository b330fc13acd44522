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

from harness.dims import Dims
from harness.errors import UplabError

# Dense bf16 tensor-core peaks (no sparsity), FLOP/s, by a fragment of torch.cuda.get_device_name().
# The longest matching fragment wins, so "H100 PCIe" and "H100 NVL" beat "H100", "A100" beats "A10",
# "L40S" beats "L4". H100 NVL: 835 TFLOP/s dense per GPU (NVIDIA's 1,671 is with sparsity).
PEAK_BF16 = {
    "H100": 989e12, "H100 PCIe": 756e12, "H100 NVL": 835e12, "H200": 989e12, "A100": 312e12,
    "L40S": 362e12, "L40": 181e12, "L4": 121e12, "A10": 125e12,
}

def matmul_params(config) -> int:
    """N of 6·N: weights of every projection and the lm_head (tied or not); no embeddings, biases, norms."""
    d = Dims.from_config(config)
    return d.layers * d.linear_params() + d.vocab * d.hidden


def attention_flops_per_token(config, seq_len: int) -> float:
    """12·L·h_attn·s: QKᵀ and AV, forward and backward, full s×s (no causal halving, as PaLM)."""
    if not isinstance(seq_len, int) or seq_len < 1:
        raise UplabError(f"sequence length must be a positive integer, got {seq_len!r}")
    d = Dims.from_config(config)
    return 12.0 * d.layers * d.heads * d.head_dim * seq_len


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
