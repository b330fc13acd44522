"""NaN/Inf weights: refused by every builder (as by `uplab diff`) unless the user allows them.

A non-finite weight in a source is a broken download or a diverged run; copying it silently
would build a model that produces NaN loss from its first step.
"""

from __future__ import annotations

import torch

from harness.errors import UplabError

CHUNK = 2**22  # elements per check when scanning a checkpoint without loading whole tensors


def _message(name: str, where: str) -> str:
    return (f"{name} in {where} has NaN or Inf values; the checkpoint is broken (re-save it or "
            "take an earlier snapshot), or pass --allow-nonfinite to copy them as they are")


def check_finite(name: str, tensor: torch.Tensor, where: str) -> torch.Tensor:
    if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
        raise UplabError(_message(name, where))
    return tensor


def scan_finite(reader, names, where: str) -> None:
    """Check tensors of a harness.checkpoint.Checkpoint chunk by chunk (bounded memory)."""
    for name in names:
        for chunk in reader.chunks(name, CHUNK):
            check_finite(name, chunk, where)
