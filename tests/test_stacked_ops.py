"""The stacked forward's own attention and RoPE compute what SDPA's math kernel and HF's rotary
embedding compute, bit for bit, forward and backward, so replacing them changed no trained number
(harness.train.stacked: `_math_attention`, `_rope`)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel
from transformers.models.mistral.modeling_mistral import apply_rotary_pos_emb

from harness import tiny
from harness.train import stacked
from harness.train.stacked import Stacked

torch.set_num_threads(1)


def _leaves(*shapes, seed=0):
    g = torch.Generator().manual_seed(seed)
    # [B, T, H, D] transposed to [B, H, T, D]: the strided layout the stacked forward hands over
    return [torch.randn(b, t, h, d, generator=g).transpose(1, 2).detach().requires_grad_(True)
            for b, h, t, d in shapes]


def _grads(fn, leaves):
    out = fn(*leaves)
    weight = torch.linspace(-1, 1, out.numel()).view(out.shape)  # every output element matters
    grads = torch.autograd.grad((out * weight).sum(), leaves)
    return [out.detach(), *grads]


@pytest.mark.parametrize("b, h, t, d", [(384, 2, 20, 8), (3, 9, 33, 64), (5, 4, 7, 16), (6, 2, 1, 8)])
def test_math_attention_is_sdpas_math_kernel_bit_for_bit(b, h, t, d):
    leaves = _leaves((b, h, t, d), (b, h, t, d), (b, h, t, d))
    with sdpa_kernel(SDPBackend.MATH):
        ref = _grads(lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=t > 1, scale=d ** -0.5), leaves)
    ours = _grads(lambda q, k, v: stacked._math_attention(q, k, v, d ** -0.5), leaves)
    assert all(torch.equal(a, c) for a, c in zip(ref, ours))


def test_attention_takes_the_math_replica_only_for_a_differentiated_fp32_cpu_forward(monkeypatch):
    calls = []
    monkeypatch.setattr(stacked, "_math_attention", lambda *a: calls.append(1) or a[0])
    q, k, v = _leaves((2, 2, 5, 8), (2, 2, 5, 8), (2, 2, 5, 8))
    stacked._attention(q, k, v, 0.3)
    with torch.no_grad():
        stacked._attention(q, k, v, 0.3)
    stacked._attention(q.bfloat16(), k.bfloat16(), v.bfloat16(), 0.3)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        stacked._attention(q, k, v, 0.3)
    assert calls == [1]


@pytest.mark.parametrize("heads, d", [(2, 8), (1, 8), (9, 64)])
def test_rope_is_hfs_rotary_embedding_bit_for_bit(heads, d):
    t = 20
    (x,) = _leaves((6, heads, t, d))
    model = tiny.build(tiny.preset("tiny", heads=heads, kv_heads=heads, hidden=heads * d), 0)
    cos, sin = model.model.rotary_emb(x, torch.arange(t).unsqueeze(0))  # [1, T, D]

    def hf(x):
        return apply_rotary_pos_emb(x, x, cos, sin)[0]  # HF rotates [B, H, T, D]

    def ours(x):
        flat = x.transpose(1, 2).reshape(x.shape[0], t, heads * d)
        return stacked._rope(flat, *stacked._rope_tables(cos, sin, heads), heads).transpose(1, 2)

    assert all(torch.equal(a, c) for a, c in zip(_grads(hf, [x]), _grads(ours, [x])))


def _train(monkeypatch, reference: bool):
    if reference:  # the forward as it was: SDPA's math kernel, HF's rotate_half on [R, T, H, D]
        monkeypatch.setattr(stacked, "_attention", lambda q, k, v, scale: F.scaled_dot_product_attention(
            q, k, v, is_causal=q.shape[-2] > 1, scale=scale))

        def rope(x, cos, signed_sin, heads):
            r, t, w = x.shape
            x, cos, sin = x.view(r, t, heads, w // heads), cos.view(1, t, heads, -1), signed_sin.view(1, t, heads, -1)
            half = x.shape[-1] // 2
            sin = torch.cat((-sin[..., :half], sin[..., half:]), -1)  # the table's sign undone
            rotated = torch.cat((-x[..., half:], x[..., :half]), -1)
            return x * cos[:, :, :1] + rotated * sin[:, :, :1]
        monkeypatch.setattr(stacked, "_rope", rope)
    st = Stacked([tiny.build(tiny.preset("tiny@4"), s) for s in range(3)], torch.device("cpu"))
    opt = torch.optim.AdamW(list(st.trainable.values()), lr=3e-3, fused=True)
    g = torch.Generator().manual_seed(0)
    for _ in range(4):
        ids = torch.randint(3, 200, (3, 8, 20), generator=g)
        opt.zero_grad(set_to_none=True)
        st.losses(ids, ids).sum().backward()
        st.clip_(1.0)
        opt.step()
    monkeypatch.undo()
    return {k: v.detach().clone() for k, v in st.params.items()}


def test_stacked_training_steps_equal_those_of_the_sdpa_and_hf_rope_forward(monkeypatch):
    ours, ref = _train(monkeypatch, False), _train(monkeypatch, True)
    assert all(torch.equal(ours[k], ref[k]) for k in ours)
    assert not torch.equal(ours["model.layers.0.self_attn.q_proj.weight"][0],
                           ours["model.layers.0.self_attn.q_proj.weight"][1])  # seeds differ: a real run
