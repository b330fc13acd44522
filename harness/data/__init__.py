"""Deterministic offline data: synthetic domains at `tiny` (original, target, conflict), local text/jsonl/HF datasets above."""

from harness.data.dataset import (IGNORE, TokenSet, collate, encode_pairs, encode_segments, epoch_batches,
                                  load, load_split, pack_texts, token_count)
from harness.data.spec import DataSpec, Local, Synthetic
from harness.data.tasks import DOMAINS, generate
from harness.data.tokenizer import ByteTokenizer, load_tokenizer

__all__ = [
    "IGNORE", "TokenSet", "collate", "encode_pairs", "encode_segments", "epoch_batches", "load",
    "load_split", "pack_texts", "token_count",
    "DataSpec", "Local", "Synthetic", "DOMAINS", "generate", "ByteTokenizer", "load_tokenizer",
]
