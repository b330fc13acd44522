"""Architecture facts (tensor names, depth key), loaded from architectures.yaml and validated."""

from __future__ import annotations

import re
from functools import lru_cache
from importlib import resources

import yaml
from pydantic import BaseModel, ConfigDict, field_validator

from harness.errors import UplabError


class Architecture(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    layer_pattern: str
    layers_key: str
    per_layer_keys: tuple[str, ...]
    modules: dict[str, str]
    zero_init: tuple[str, ...]
    embeddings: str
    final_norm: str
    lm_head: str

    @field_validator("layer_pattern")
    @classmethod
    def _compiles(cls, value: str) -> str:
        if re.compile(value).groups != 2:
            raise ValueError("layer_pattern needs two groups: layer index and module path")
        return value

    def split(self, tensor_name: str) -> tuple[int, str] | None:
        """(layer index, path inside the layer) for a layer tensor, None for the others."""
        m = re.match(self.layer_pattern, tensor_name)
        return (int(m.group(1)), m.group(2)) if m else None

    def layer_tensor(self, layer: int, inner: str) -> str:
        """Inverse of split for this family's naming."""
        prefix = self.layer_pattern.split(r"(\d+)")[0].lstrip("^").replace("\\.", ".")
        return f"{prefix}{layer}.{inner}"

    def module_of(self, inner: str) -> str | None:
        """Short module name (q_proj, ..., input_layernorm) of a path inside a layer."""
        for short, path in self.modules.items():
            if inner == path or inner.startswith(path + "."):
                return short
        return None

    def extra_module_of(self, tensor_name: str) -> str | None:
        """embed_tokens / norm / lm_head for the non-layer tensors."""
        return {self.embeddings: "embed_tokens", self.final_norm: "norm",
                self.lm_head: "lm_head"}.get(tensor_name)


# What a config or a caller that names no architecture is read as: mistral, llama and qwen2 share
# tensor names, so the fallback only decides for families whose names differ.
FALLBACK = "mistral"


@lru_cache(maxsize=1)
def _registry() -> dict[str, Architecture]:
    text = resources.files("harness").joinpath("architectures.yaml").read_text()
    raw = yaml.safe_load(text)["architectures"]
    return {name: Architecture(name=name, **facts) for name, facts in raw.items()}


def supported() -> list[str]:
    return sorted(_registry())


def get(model_type: str) -> Architecture:
    try:
        return _registry()[model_type]
    except KeyError:
        raise UplabError(
            f"architecture {model_type!r} is not supported; uplab knows {', '.join(supported())} "
            "(add it to harness/architectures.yaml)"
        ) from None
