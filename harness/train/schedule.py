"""Learning-rate schedule: linear warmup, then cosine decay to min_lr·lr (or constant)."""

from __future__ import annotations

import math


def lr_at(step: int, total: int, lr: float, *, schedule: str, warmup: float, min_lr: float) -> float:
    """LR for the update that turns step `step` into `step + 1` (nanoGPT's get_lr, by fraction)."""
    w = int(round(warmup * total))
    if step < w:  # warmup keeps Adam's first, badly-estimated steps small
        return lr * (step + 1) / w
    if schedule == "constant":
        return lr
    progress = (step - w) / max(1, total - w)
    return lr * (min_lr + (1 - min_lr) * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0))))
