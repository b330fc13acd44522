"""FLOPs per token and MFU from a config: exact parameter counts, PaLM's formula, the peak table."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
import transformers

from harness import flops, tiny
from harness.dims import param_count
from harness.errors import UplabError


def hf_numel(config) -> int:
    """What the HF model really holds (a tied lm_head once), built without allocating weights."""
    with torch.device("meta"):
        model = transformers.AutoModelForCausalLM.from_config(config)
    return sum(p.numel() for p in model.parameters())


def llama_config(**kw):
    fields = dict(vocab_size=259, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                  num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=True)
    return transformers.LlamaConfig(**{**fields, **kw})


@pytest.mark.parametrize("name", list(tiny.PRESETS))
def test_param_count_is_the_models_numel_for_every_preset(name):
    config = tiny.PRESETS[name].hf_config()
    assert param_count(config) == hf_numel(config), name


@pytest.mark.parametrize("variant", [
    dict(tie_word_embeddings=False),
    dict(attention_bias=True, mlp_bias=True),
    dict(head_dim=32),  # heads * head_dim (128) != hidden (64): q and o are not square
])
def test_param_count_follows_config_flags(variant):
    config = llama_config(**variant)
    assert param_count(config) == hf_numel(config), variant


def test_param_count_of_a_real_cpu_model():
    model = tiny.build(tiny.preset("tiny-qwen2", tie_embeddings=False), 0)
    assert param_count(model.config) == sum(p.numel() for p in model.parameters())


def test_flops_per_token_by_hand():
    config = llama_config()
    # per layer: q 64·64 + k 64·32 + v 64·32 + o 64·64 + gate/up/down 3·64·128 = 36864;
    # 2 layers = 73728, plus the (tied) lm_head 259·64 = 16576: N = 90304
    assert flops.matmul_params(config) == 90304
    # 6·N = 541824; attention 12·L·(heads·head_dim)·s = 12·2·64·100 = 153600
    assert flops.flops_per_token(config, 100) == 541824 + 153600
    # head_dim from the config, not hidden/heads: attention width 4·32 = 128
    assert flops.attention_flops_per_token(llama_config(head_dim=32), 100) == 12 * 2 * 128 * 100


@pytest.mark.parametrize("device, peak", [
    ("NVIDIA H100 80GB HBM3", 989e12),
    ("NVIDIA H100 PCIe", 756e12),
    ("NVIDIA H100 NVL", 835e12),  # not the SXM's 989e12, which "H100" alone would give
    ("NVIDIA H200", 989e12),
    ("NVIDIA A100-SXM4-80GB", 312e12),
    ("NVIDIA A10", 125e12),
    ("NVIDIA L40S", 362e12),
    ("NVIDIA L4", 121e12),
])
def test_mfu_is_model_flops_over_the_devices_peak(device, peak):
    config = llama_config()
    got = flops.mfu(1e6, config, 100, device)
    assert got == pytest.approx((541824 + 153600) * 1e6 / peak, rel=1e-12), device


@pytest.mark.parametrize("device", ["Tesla T4", "cpu", ""])
def test_mfu_of_an_unknown_device_is_none(device):
    assert flops.mfu(1e6, llama_config(), 100, device) is None


def without(config, field: str) -> SimpleNamespace:
    """The config's fields less one (HF configs refuse to lose a field, so a plain namespace)."""
    fields = {k: v for k, v in config.to_dict().items() if k != field}
    return SimpleNamespace(**fields)


@pytest.mark.parametrize("call, match", [
    (lambda: flops.flops_per_token(transformers.GPT2Config(), 8), "architecture 'gpt2' is not supported"),
    (lambda: param_count(without(llama_config(), "intermediate_size")), "lacks intermediate_size"),
    (lambda: flops.flops_per_token(llama_config(), 0), "sequence length must be a positive integer"),
    (lambda: flops.flops_per_token(llama_config(), 2.5), "sequence length must be a positive integer"),
    (lambda: flops.mfu(-1.0, llama_config(), 8, "NVIDIA H100"), "tokens per second must be >= 0"),
    (lambda: flops.mfu(float("nan"), llama_config(), 8, "NVIDIA H100"), "tokens per second must be >= 0"),
    (lambda: flops.mfu(1.0, transformers.GPT2Config(), 8, "Tesla T4"), "architecture 'gpt2'"),
], ids=["arch", "field", "seq0", "seq-float", "tps-negative", "tps-nan", "arch-unknown-device"])
def test_bad_inputs_raise_one_line(call, match):
    with pytest.raises(UplabError, match=match) as e:
        call()
    assert "\n" not in str(e.value)
