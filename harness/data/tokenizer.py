"""Tokenizers: bytes at `tiny`, the model's own tokenizer (from a local path only) above it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness.errors import UplabError
from harness.tiny import BOS_ID, EOS_ID, PAD_ID


@dataclass(frozen=True)
class ByteTokenizer:
    """UTF-8 bytes are ids 0..255; BOS/EOS/PAD follow, as in harness.tiny."""

    bos_id: int | None = BOS_ID
    eos_id: int | None = EOS_ID
    pad_id: int = PAD_ID
    name: str = "bytes"

    def encode(self, text: str) -> list[int]:
        return list(text.encode("utf-8"))

    def decode(self, ids) -> str:
        return bytes(i for i in ids if i < 256).decode("utf-8", errors="replace")


@dataclass(frozen=True)
class HFTokenizer:
    """A transformers tokenizer reduced to what the data code needs (no specials added by encode)."""

    tok: object
    bos_id: int | None
    eos_id: int | None
    pad_id: int
    name: str

    def encode(self, text: str) -> list[int]:
        return list(self.tok(text, add_special_tokens=False)["input_ids"])

    def encode_many(self, texts: list[str]) -> list[list[int]]:
        """`encode` of each text, in one batched call."""
        return [list(ids) for ids in self.tok(texts, add_special_tokens=False)["input_ids"]]

    def decode(self, ids) -> str:
        return self.tok.decode(list(ids))


def load_tokenizer(path: str | Path) -> HFTokenizer:
    """AutoTokenizer from a local directory; nothing is ever downloaded."""
    from transformers import AutoTokenizer

    p = Path(path)
    if not p.is_dir():
        raise UplabError(f"tokenizer path {str(p)!r} is not a directory; pass a local model folder")
    try:
        tok = AutoTokenizer.from_pretrained(str(p), local_files_only=True)
    except Exception as e:  # transformers raises OSError/ValueError/... with long messages
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UplabError(f"no usable tokenizer in {str(p)!r} ({first}); "
                         "point at a folder with tokenizer.json or tokenizer_config.json") from None
    eos = tok.eos_token_id
    pad = tok.pad_token_id if tok.pad_token_id is not None else (eos if eos is not None else 0)
    return HFTokenizer(tok, tok.bos_token_id, eos, pad, name=str(p))
