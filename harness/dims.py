"""A decoder's dimensions from its config (a config.json dict or an HF config object): what
parameter counts, FLOPs (harness.flops) and memory estimates (harness.launch.resources) are
computed from, without building the model."""

from __future__ import annotations

from dataclasses import dataclass

from harness import arch as arch_facts
from harness.errors import UplabError

# transformers' Qwen2Attention gives q/k/v a bias whatever the config says; Llama reads
# attention_bias (q/k/v/o) and mlp_bias; Mistral has neither.
_QKV_BIAS_ALWAYS = {"qwen2"}
_REQUIRED = ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "vocab_size")


@dataclass(frozen=True)
class Dims:
    """The hyperparameters that decide parameter count and activation size."""

    model_type: str
    architecture: str
    hidden: int
    intermediate: int
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    vocab: int
    tied: bool
    qkv_bias: bool
    o_bias: bool
    mlp_bias: bool
    max_positions: int

    @classmethod
    def from_config(cls, config, origin: str = "config") -> "Dims":
        """From a config.json dict or an HF config object."""
        if not isinstance(config, dict):
            config = config.to_dict() if hasattr(config, "to_dict") else dict(vars(config))
        model_type = config.get("model_type", arch_facts.FALLBACK)
        facts = arch_facts.get(model_type)  # an unsupported architecture fails here, naming the known ones
        missing = [k for k in _REQUIRED if k not in config]
        if missing:
            raise UplabError(f"{origin} lacks {', '.join(missing)}; pass a decoder's HF config.json "
                             f"(architectures: {', '.join(arch_facts.supported())})")
        bad = [k for k in _REQUIRED if not isinstance(config[k], int) or config[k] < 1]
        if bad:
            raise UplabError(f"{origin} needs positive integer {', '.join(bad)}; got "
                             f"{', '.join(f'{k}={config[k]!r}' for k in bad)}")
        heads = int(config["num_attention_heads"])
        bias = bool(config.get("attention_bias", False))
        return cls(
            model_type=facts.name,
            architecture=(config.get("architectures") or [f"{model_type.capitalize()}ForCausalLM"])[0],
            hidden=int(config["hidden_size"]),
            intermediate=int(config["intermediate_size"]),
            layers=int(config[facts.layers_key]),
            heads=heads,
            kv_heads=int(config.get("num_key_value_heads") or heads),
            head_dim=int(config.get("head_dim") or config["hidden_size"] // heads),
            vocab=int(config["vocab_size"]),
            tied=bool(config.get("tie_word_embeddings", False)),
            qkv_bias=bias or facts.name in _QKV_BIAS_ALWAYS,
            o_bias=bias and facts.name not in _QKV_BIAS_ALWAYS,
            mlp_bias=bool(config.get("mlp_bias", False)),
            max_positions=int(config.get("max_position_embeddings", 0)),
        )

    def modules(self) -> dict[str, tuple[int, int]]:
        """Short name -> (in, out) features of each linear in a decoder layer."""
        h, i = self.hidden, self.intermediate
        q, kv = self.heads * self.head_dim, self.kv_heads * self.head_dim
        return {"q_proj": (h, q), "k_proj": (h, kv), "v_proj": (h, kv), "o_proj": (q, h),
                "gate_proj": (h, i), "up_proj": (h, i), "down_proj": (i, h)}

    def linear_params(self) -> int:
        """Weights of a layer's linears (what autocast casts to bf16)."""
        return sum(a * b for a, b in self.modules().values())

    def layer_params(self) -> int:
        h, i = self.hidden, self.intermediate
        q, kv = self.heads * self.head_dim, self.kv_heads * self.head_dim
        bias = (q + 2 * kv) * self.qkv_bias + h * self.o_bias + (2 * i + h) * self.mlp_bias
        return self.linear_params() + bias + 2 * h  # + input and post-attention RMSNorm weights

    def root_params(self) -> int:
        """embed_tokens, the final norm and (untied) lm_head: the FSDP root unit."""
        return self.vocab * self.hidden * (1 if self.tied else 2) + self.hidden

    def params(self) -> int:
        return self.layers * self.layer_params() + self.root_params()


def param_count(config) -> int:
    """Parameters of the HF model a config (dict or object) describes: sum(p.numel()), tested."""
    return Dims.from_config(config).params()
