"""The optimizer a run spec names, built the same way for the per-seed loop and stacked seeds.

AdamW (the default) with nanoGPT's betas. SGD with momentum is the control arm of the fill and
saturation claims: AdamW moves every trained element by about lr per step whatever its gradient's
size, so a zeroed module "fills" and a growth curve bends partly because of AdamW's
normalisation; under SGD a weight moves in proportion to its gradient. Both are element-wise, so
seeds stacked into one tensor each get exactly their own update. Weight decay only if asked (it
would shrink zeroed modules' growth).
"""

from __future__ import annotations

import torch

OPTIMIZERS = ("adamw", "sgd")
SGD_MOMENTUM = 0.9


def make_optimizer(spec, params, *, fused: bool) -> torch.optim.Optimizer:
    """spec.optimizer over `params` at spec.lr; `fused`: torch's one-pass kernel (AdamW)."""
    if spec.optimizer == "sgd":
        return torch.optim.SGD(params, lr=spec.lr, momentum=SGD_MOMENTUM, weight_decay=spec.weight_decay)
    return torch.optim.AdamW(params, lr=spec.lr, betas=(0.9, 0.95), weight_decay=spec.weight_decay, fused=fused)
