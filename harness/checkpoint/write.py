"""Write HF checkpoint directories: sharded safetensors, staged and moved into place atomically."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import save_file

from harness.checkpoint.output import os_error, staged_output  # noqa: F401  (the one staged writer)
from harness.checkpoint.read import INDEX, SINGLE

SIDE_FILES = (  # copied beside the weights, as mergekit copies the tokenizer
    "tokenizer_config.json", "special_tokens_map.json", "tokenizer.json", "tokenizer.model",
    "added_tokens.json", "merges.txt", "vocab.json", "chat_template.jinja", "generation_config.json",
)


def save_tensors(tensors: dict[str, torch.Tensor], path: str | Path, metadata: dict[str, str]) -> None:
    """safetensors' save_file, with its I/O failures raised as the OSError they are
    (harness.checkpoint.output.os_error)."""
    try:
        save_file(tensors, str(path), metadata=metadata)
    except SafetensorError as e:
        raise (os_error(e, path) or e) from None


class ShardWriter:
    """Writes tensors in order into shards of at most `max_shard_bytes` (one shard in memory)."""

    def __init__(self, out: Path, max_shard_bytes: int = 5 * 10**9):
        self.out, self.max = out, max_shard_bytes
        self.shards: list[dict[str, str]] = []
        self._buf: dict[str, torch.Tensor] = {}
        self._size = 0
        self.total = 0

    def add(self, name: str, tensor: torch.Tensor) -> None:
        nbytes = tensor.numel() * tensor.element_size()
        if self._buf and self._size + nbytes > self.max:
            self._flush()
        self._buf[name] = tensor.contiguous()
        self._size += nbytes
        self.total += nbytes

    def _flush(self) -> None:
        part = self.out / f"part-{len(self.shards):05d}.safetensors"
        save_tensors(self._buf, part, metadata={"format": "pt"})
        self.shards.append({name: part.name for name in self._buf})
        self._buf, self._size = {}, 0

    def close(self) -> None:
        if self._buf or not self.shards:
            self._flush()
        n = len(self.shards)
        if n == 1:
            os.replace(self.out / "part-00000.safetensors", self.out / SINGLE)
            return
        weight_map = {}
        for i, shard in enumerate(self.shards):
            final = f"model-{i + 1:05d}-of-{n:05d}.safetensors"
            os.replace(self.out / f"part-{i:05d}.safetensors", self.out / final)
            weight_map.update({name: final for name in shard})
        index = {"metadata": {"total_size": self.total}, "weight_map": weight_map}
        (self.out / INDEX).write_text(json.dumps(index, indent=2))


def copy_side_files(src: Path, out: Path) -> None:
    for name in SIDE_FILES:
        if (src / name).is_file():
            shutil.copy(src / name, out / name)
