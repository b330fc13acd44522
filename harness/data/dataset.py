"""Token sets and batches: examples become (input_ids, labels) with the prompt masked."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from harness.data import local, tasks
from harness.data.spec import DataSpec, Local, Synthetic
from harness.errors import UplabError

IGNORE = -100  # label value the loss skips (torch/HF convention)


@dataclass(frozen=True)
class TokenSet:
    """Sequences with the position where their scored part starts (the answer, or 1 for text)."""

    name: str
    seqs: tuple[tuple[int, ...], ...]
    starts: tuple[int, ...]
    has_answers: bool  # exact-match accuracy is meaningful (prompt/answer examples)

    def __len__(self) -> int:
        return len(self.seqs)


def encode_pairs(name: str, pairs, tok, max_len: int) -> TokenSet:
    """BOS prompt answer EOS; the answer (with EOS, so stopping counts) is what gets scored."""
    seqs, starts = [], []
    for prompt, answer in pairs:
        head = ([tok.bos_id] if tok.bos_id is not None else []) + tok.encode(prompt)
        tail = tok.encode(answer) + ([tok.eos_id] if tok.eos_id is not None else [])
        ids = (head + tail)[:max_len]
        if len(head) >= len(ids):  # the answer was truncated away: nothing to score
            continue
        seqs.append(tuple(ids))
        starts.append(len(head))
    return TokenSet(name, tuple(seqs), tuple(starts), True)


def pack_texts(name: str, texts, tok, max_len: int) -> TokenSet:
    """Concatenate documents (EOS-separated) and cut max_len blocks, the usual LM packing."""
    stream: list[int] = []
    for t in texts:
        stream += ([tok.bos_id] if tok.bos_id is not None else []) + tok.encode(t)
        stream += [tok.eos_id] if tok.eos_id is not None else []
    blocks = [tuple(stream[i:i + max_len]) for i in range(0, len(stream) - max_len + 1, max_len)]
    if not blocks and len(stream) > 1:  # less text than one block: keep it as one short block
        blocks = [tuple(stream)]
    return TokenSet(name, tuple(blocks), tuple(1 for _ in blocks), False)


def load_split(name: str, source, split: str, tok, max_len: int, n: int | None = None) -> TokenSet:
    """One split of a source as tokens; `n` is the number of examples (synthetic) or a cap (local)."""
    if isinstance(source, Synthetic):
        count = source.size if n is None else n
        return encode_pairs(name, tasks.generate(source.domain, split, count, source.seed), tok, max_len)
    assert isinstance(source, Local)
    recs = local.read(source, split)
    pairs = [r for r in recs if isinstance(r, tuple)]
    texts = [r for r in recs if isinstance(r, str)]
    if pairs and texts:
        raise UplabError(f"{source.path}: mixes prompt/completion records with text records; use one kind")
    cap = n if n is not None else source.size
    if pairs:
        return encode_pairs(name, pairs[:cap], tok, max_len)
    ts = pack_texts(name, texts, tok, max_len)
    return TokenSet(name, ts.seqs[:cap], ts.starts[:cap], False) if cap else ts


def load(spec: DataSpec, tok) -> tuple[TokenSet, dict[str, TokenSet]]:
    """The training set and every named held-out set of a data spec."""
    train = load_split("train", spec.train, "train", tok, spec.max_len)
    if len(train) < spec.batch_size:
        raise UplabError(f"training data has {len(train)} examples, fewer than one batch "
                         f"({spec.batch_size}); add data or lower batch_size")
    evals = {k: load_split(k, s, "heldout", tok, spec.max_len, spec.eval_size)
             for k, s in spec.evals.items()}
    return train, evals


def epoch_batches(n: int, batch_size: int, seed: int, epoch: int) -> list[np.ndarray]:
    """Shuffled full batches of one epoch; the order follows (seed, epoch) and nothing else."""
    order = np.random.default_rng([seed, epoch]).permutation(n)
    return [order[i:i + batch_size] for i in range(0, n - batch_size + 1, batch_size)]


def collate(ts: TokenSet, idx, pad_id: int, train_on: str = "answer") -> dict[str, torch.Tensor]:
    """Right-padded input_ids and labels; padding and (unless train_on='all') prompts are IGNORE.

    Right padding needs no attention mask in a causal model: real tokens never see later pads.
    """
    rows = [ts.seqs[i] for i in idx]
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    labels = torch.full((len(rows), width), IGNORE, dtype=torch.long)
    for j, i in enumerate(idx):
        seq, start = ts.seqs[i], (ts.starts[i] if train_on == "answer" else 1)
        ids[j, :len(seq)] = torch.tensor(seq)
        labels[j, start:len(seq)] = ids[j, start:len(seq)]
    return {"input_ids": ids, "labels": labels}
