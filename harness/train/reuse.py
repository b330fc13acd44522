"""Held-out scores of a function this process has already scored, found by content.

Every fine-tune scores its step 0, the model as handed to it. Runs that start from the same
weights compute the same numbers again: at `tiny` the normal fine-tune and its frozen, long and
SGD variants of one base; at `real` every seed of a kind, since the base is one pretrained model
and seeds vary only the data order (there a step-0 score is about a fifth of a run's time).

A score is reused only when everything it depends on is equal, down to the bits: the weights'
bytes, the model's class and config, how it was scored (device, precision, one model or the rows
of a stack of n, batch size) and the held-out set's tokens. Reused scores are therefore exactly
the numbers a fresh evaluation would give. Only CPU runs in one process reuse scores
(harness.train.record says why).
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Callable, Mapping

import torch

_SCORES: dict[str, dict] = {}  # function key | held-out set digest -> scores


def function_key(states: list[Mapping[str, torch.Tensor]], *parts: str) -> str:
    """Digest of the models' weights (names, dtypes, shapes, bytes) and what else the scores
    depend on (`parts`: class, config, engine)."""
    h = hashlib.sha256()
    for part in parts:
        h.update(part.encode())
        h.update(b"\0")
    for state in states:
        for name in sorted(state):
            t = state[name].detach()
            h.update(f"{name}|{t.dtype}|{tuple(t.shape)}\0".encode())
            h.update(t.reshape(-1).contiguous().cpu().view(torch.uint8).numpy())
    return h.hexdigest()


def scored(key: str, compute: Callable[[], dict]) -> dict:
    """The scores stored under `key`, else `compute()` stored; a copy either way."""
    if key not in _SCORES:
        _SCORES[key] = compute()
    return copy.deepcopy(_SCORES[key])
