"""Token sets and batches: examples become (input_ids, labels) with the prompt masked."""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from functools import cached_property, lru_cache

import numpy as np
import torch

from harness.data import local, tasks
from harness.data.spec import DataSpec, Local, Synthetic, Text
from harness.errors import UplabError

IGNORE = -100  # label value the loss skips (torch/HF convention)


@dataclass(frozen=True)
class TokenSet:
    """Token sequences with a mask of the positions that are scored (answers; all of a text)."""

    name: str
    seqs: tuple[tuple[int, ...], ...]
    masks: tuple[tuple[bool, ...], ...]
    has_answers: bool  # exact-match accuracy is meaningful (examples with answers)

    def __len__(self) -> int:
        return len(self.seqs)

    @cached_property
    def digest(self) -> str:
        """sha256 of the name, tokens and scored positions: equal sets have equal digests."""
        return hashlib.sha256(repr((self.name, self.has_answers, self.seqs, self.masks)).encode()).hexdigest()

    def batches(self, batch_size: int, pad_id: int, train_on: str = "answer") -> list[dict[str, torch.Tensor]]:
        """The whole set as consecutive collated batches, built once per set and arguments: a
        held-out set is scored at every snapshot and every ablation, and collating is
        per-example Python work. Treat the tensors as read-only."""
        cache = self.__dict__.setdefault("_batches", {})  # beside the frozen fields
        key = (batch_size, pad_id, train_on)
        if key not in cache:
            cache[key] = [collate(self, range(i, min(i + batch_size, len(self))), pad_id, train_on)
                          for i in range(0, len(self), batch_size)]
        return cache[key]


def encode_segments(name: str, examples, tok, max_len: int) -> TokenSet:
    """BOS, then each (text, scored) segment; EOS ends it and is scored, so stopping counts."""
    seqs, masks = [], []
    for segs in examples:
        ids: list[int] = [tok.bos_id] if tok.bos_id is not None else []
        mask: list[bool] = [False] * len(ids)
        for text, scored in segs:
            piece = tok.encode(text)
            ids += piece
            mask += [scored] * len(piece)
        if tok.eos_id is not None:
            ids.append(tok.eos_id)
            mask.append(True)
        ids, mask = ids[:max_len], mask[:max_len]
        if not any(mask[1:]):  # the answer was truncated away: nothing to score
            continue
        seqs.append(tuple(ids))
        masks.append(tuple(mask))
    return TokenSet(name, tuple(seqs), tuple(masks), True)


def encode_pairs(name: str, pairs, tok, max_len: int) -> TokenSet:
    """(prompt, completion) records: the completion (and EOS) is scored."""
    return encode_segments(name, [((p, False), (c, True)) for p, c in pairs], tok, max_len)


def _stream(texts, tok):
    """Token ids of documents, BOS/EOS-separated, yielded a document at a time; documents are
    encoded in batches (the fast tokenizer works in parallel), each exactly as one at a time."""
    texts = list(texts)
    many = getattr(tok, "encode_many", None)
    for i in range(0, len(texts), 64):
        chunk = texts[i:i + 64]
        for ids in (many(chunk) if many is not None else [tok.encode(t) for t in chunk]):
            yield (([tok.bos_id] if tok.bos_id is not None else []) + list(ids)
                   + ([tok.eos_id] if tok.eos_id is not None else []))


def pack_texts(name: str, texts, tok, max_len: int, n: int | None = None) -> TokenSet:
    """Concatenate documents (EOS-separated) and cut max_len blocks, the usual LM packing; with
    `n`, the first n blocks, tokenizing only the documents they need (the blocks are the same)."""
    stream: list[int] = []
    for ids in _stream(texts, tok):
        stream += ids
        if n is not None and len(stream) >= n * max_len:
            break
    blocks = [tuple(stream[i:i + max_len]) for i in range(0, len(stream) - max_len + 1, max_len)]
    if not blocks and len(stream) > 1:  # less text than one block: keep it as one short block
        blocks = [tuple(stream)]
    blocks = blocks if n is None else blocks[:n]
    return TokenSet(name, tuple(blocks), tuple((False,) + (True,) * (len(b) - 1) for b in blocks), False)


def pack_domain(name: str, source: Text, split: str, tok, max_len: int, n: int | None) -> TokenSet:
    """A real-text domain packed into max_len blocks; with `n`, only as many documents (in their
    hash order) as the first n blocks need are tokenized, unless the training blocks are drawn
    (`Text.draw`): then n of all of them."""
    from harness.data import text

    docs = text.split_documents(source.domain, split, source.heldout_percent, source.sha256)
    if split != "train" or source.draw is None:
        return pack_texts(name, docs, tok, max_len, n)
    every = _whole_split(source.domain, source.heldout_percent, source.sha256, tok, max_len)
    if n is not None and n > len(every):
        raise UplabError(f"{source.domain}: {n} training blocks asked, the training split has {len(every)} "
                         f"of {max_len} tokens")
    picked = sorted(random.Random(source.draw).sample(range(len(every)), len(every) if n is None else n))
    return TokenSet(name, tuple(every.seqs[i] for i in picked), tuple(every.masks[i] for i in picked), False)


@lru_cache(maxsize=4)
def _whole_split(domain: str, heldout_percent: int, sha256: str, tok, max_len: int) -> TokenSet:
    """A domain's whole training split packed, once per process: every seed and run kind at
    `real` draws its blocks from it (the `python` split is ~1.5 M tokens to encode)."""
    from harness.data import text

    docs = text.split_documents(domain, "train", heldout_percent, sha256)
    return pack_texts("train", docs, tok, max_len)


def load_split(name: str, source, split: str, tok, max_len: int, n: int | None = None) -> TokenSet:
    """One split of a source as tokens; `n` is the number of examples (synthetic) or a cap (local)."""
    if isinstance(source, Synthetic):
        count = source.size if n is None else n
        if source.replay and split == "train":
            examples = tasks.mixed(source.domain, count, source.seed, source.replay)
        else:
            examples = tasks.generate(source.domain, split, count, source.seed)
        return encode_segments(name, examples, tok, max_len)
    if isinstance(source, Text):
        return pack_domain(name, source, split, tok, max_len, source.size if n is None else n)
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
    return TokenSet(name, ts.seqs[:cap], ts.masks[:cap], False) if cap else ts


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


def token_count(ts: TokenSet, idx) -> int:
    """The tokens of rows `idx` before padding. Not `ids != pad_id`: a tokenizer whose pad is its
    EOS (SmolLM2's) writes that id inside packed text, where it is a real token."""
    return sum(len(ts.seqs[i]) for i in idx)


def collate(ts: TokenSet, idx, pad_id: int, train_on: str = "answer") -> dict[str, torch.Tensor]:
    """Right-padded input_ids and labels; padding and (unless train_on='all') prompts are IGNORE.

    Right padding needs no attention mask in a causal model: real tokens never see later pads.
    """
    rows = [ts.seqs[i] for i in idx]
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    keep = torch.zeros((len(rows), width), dtype=torch.bool)
    for j, i in enumerate(idx):
        n = len(ts.seqs[i])
        ids[j, :n] = torch.tensor(ts.seqs[i])
        keep[j, :n] = torch.tensor(ts.masks[i]) if train_on == "answer" else True
    keep[:, 0] = False  # nothing predicts the first token
    labels = torch.where(keep, ids, torch.full_like(ids, IGNORE))
    return {"input_ids": ids, "labels": labels}
