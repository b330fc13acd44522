"""Held-out scores: answer-token loss, token accuracy, and exact match of the whole answer.

Exact match is teacher-forced: every scored position's argmax equals the gold token. For an
autoregressive model that is the same event as greedy decoding reproducing the answer (and its
EOS), at the cost of one forward pass.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from harness.data import IGNORE, TokenSet, collate


@torch.no_grad()
def evaluate(model, ts: TokenSet, pad_id: int, *, device=None, autocast=None, batch_size: int = 256) -> dict:
    was_training = model.training
    model.eval()
    device = device or next(model.parameters()).device
    loss_sum, tokens, correct, exact = 0.0, 0, 0, 0
    for i in range(0, len(ts), batch_size):
        b = collate(ts, range(i, min(i + batch_size, len(ts))), pad_id, "answer")
        ids, labels = b["input_ids"].to(device), b["labels"].to(device)
        with autocast() if autocast else torch.autocast("cpu", enabled=False):
            logits = model(input_ids=ids).logits
        # position t predicts token t+1
        logits, labels = logits[:, :-1].float(), labels[:, 1:]
        mask = labels != IGNORE
        ce = F.cross_entropy(logits.transpose(1, 2), labels.clamp(min=0), reduction="none")
        hit = (logits.argmax(-1) == labels) & mask
        loss_sum += float((ce * mask).sum())
        tokens += int(mask.sum())
        correct += int(hit.sum())
        exact += int((hit | ~mask).all(dim=1).sum())
    model.train(was_training)
    return {
        "loss": loss_sum / max(tokens, 1),
        "tok_acc": correct / max(tokens, 1),
        "acc": exact / len(ts) if ts.has_answers else None,
        "n": len(ts),
        "tokens": tokens,
    }
