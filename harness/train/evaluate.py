"""Held-out scores: answer-token loss, token accuracy, and exact match of the whole answer.

Exact match is teacher-forced: every scored position's argmax equals the gold token. For an
autoregressive model that is the same event as greedy decoding reproducing the answer (and its
EOS), at the cost of one forward pass.

One model (`evaluate`) or N seeds' models stacked into one forward (`evaluate_many`, with
harness.train.stacked's logits) score through the same tally, so their numbers mean the same.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from harness.data import IGNORE, TokenSet

# Examples per scoring forward: one model's batch, or split between the seeds of a stack so the
# logits a forward holds stay the same size.
EVAL_BATCH = 256


@torch.no_grad()
def evaluate(model, ts: TokenSet, pad_id: int, *, device=None, autocast=None, batch_size: int = EVAL_BATCH) -> dict:
    was_training = model.training
    model.eval()
    device = device or next(model.parameters()).device

    def logits(ids: torch.Tensor) -> torch.Tensor:
        with autocast() if autocast else torch.autocast("cpu", enabled=False):
            return model(input_ids=ids).logits.unsqueeze(0)

    try:
        return evaluate_many(logits, 1, ts, pad_id, device=device, batch_size=batch_size)[0]
    finally:
        model.train(was_training)


@torch.no_grad()
def evaluate_many(logits: Callable[[torch.Tensor], torch.Tensor], n: int, ts: TokenSet, pad_id: int, *,
                  device, batch_size: int = EVAL_BATCH) -> list[dict]:
    """Scores of n models on `ts`; logits(ids [B, T]) -> [n, B, T, V] (every model sees the same ids)."""
    loss_sum = torch.zeros(n, dtype=torch.float64)
    correct = torch.zeros(n, dtype=torch.long)
    exact = torch.zeros(n, dtype=torch.long)
    tokens = 0
    for b in ts.batches(batch_size, pad_id):
        ids, labels = b["input_ids"].to(device), b["labels"].to(device)
        # position t predicts token t+1
        out, labels = logits(ids)[:, :, :-1].float(), labels[:, 1:]
        mask = labels != IGNORE
        ce = F.cross_entropy(out.permute(0, 3, 1, 2), labels.clamp(min=0).expand(n, -1, -1), reduction="none")
        hit = (out.argmax(-1) == labels) & mask
        loss_sum += (ce * mask).sum((1, 2)).double().cpu()
        tokens += int(mask.sum())
        correct += hit.sum((1, 2)).cpu()
        exact += (hit | ~mask).all(dim=2).sum(1).cpu()
    return [{
        "loss": float(loss_sum[j]) / max(tokens, 1),
        "tok_acc": int(correct[j]) / max(tokens, 1),
        "acc": int(exact[j]) / len(ts) if ts.has_answers else None,
        "n": len(ts),
        "tokens": tokens,
    } for j in range(n)]
