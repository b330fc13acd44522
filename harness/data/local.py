"""Records from a local path: text lines, jsonl objects, or a saved HF dataset. Never downloads."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from harness.data.spec import Local
from harness.errors import UplabError

HELDOUT_SPLITS = ("validation", "test", "heldout")


def _format(src: Local, p: Path) -> str:
    if src.format != "auto":
        return src.format
    if p.is_dir():
        if (p / "dataset_dict.json").exists() or (p / "dataset_info.json").exists() or (p / "state.json").exists():
            return "hf"
        raise UplabError(f"data folder {str(p)!r} is not a saved HF dataset (no dataset_info.json "
                         "or dataset_dict.json); pass a .txt/.jsonl file or a save_to_disk folder")
    return "jsonl" if p.suffix in (".jsonl", ".ndjson") else "text"


def _records_from_file(src: Local, p: Path, fmt: str) -> list:
    try:
        lines = p.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as e:
        raise UplabError(f"data file {str(p)!r} is not UTF-8 text ({e.reason} at byte {e.start})") from None
    if fmt == "text":
        return [line for line in lines if line.strip()]
    out = []
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError as e:
            raise UplabError(f"{p}:{i}: not valid JSON ({e.msg}); jsonl needs one object a line") from None
    return out


def _hf_records(p: Path) -> tuple[list, list | None]:
    import datasets

    try:
        ds = datasets.load_from_disk(str(p))
    except Exception as e:
        raise UplabError(f"cannot load HF dataset from {str(p)!r} ({type(e).__name__}: "
                         f"{str(e).splitlines()[0] if str(e) else ''}); save it with save_to_disk") from None
    if isinstance(ds, datasets.DatasetDict):
        if "train" not in ds:
            raise UplabError(f"HF dataset {str(p)!r} has splits {list(ds)} but no 'train'")
        held = next((s for s in HELDOUT_SPLITS if s in ds), None)
        return list(ds["train"]), (list(ds[held]) if held else None)
    return list(ds), None


def _normalise(src: Local, rec, where: str):
    """A record becomes a str (free text) or a (prompt, completion) pair."""
    if isinstance(rec, str):
        return rec
    if not isinstance(rec, dict):
        raise UplabError(f"{where}: a record must be a JSON object or a line of text, got {type(rec).__name__}")
    if src.prompt_field in rec and src.completion_field in rec:
        return (str(rec[src.prompt_field]), str(rec[src.completion_field]))
    if src.text_field in rec:
        return str(rec[src.text_field])
    raise UplabError(f"{where}: record has neither {src.text_field!r} nor "
                     f"{src.prompt_field!r}+{src.completion_field!r} (fields: {sorted(rec)[:8]})")


def _is_heldout(rec, percent: int) -> bool:
    text = rec if isinstance(rec, str) else rec[0] + "\x00" + rec[1]
    return int(hashlib.sha1(text.encode("utf-8")).hexdigest(), 16) % 100 < percent


def read(src: Local, split: str) -> list:
    """The records of one split ('train' or 'heldout'), in file order."""
    p = Path(src.path).expanduser()
    if not p.exists():
        raise UplabError(f"data path {str(p)!r} does not exist; pass a local .txt/.jsonl file "
                         "or a datasets.save_to_disk folder")
    fmt = _format(src, p)
    if fmt == "hf":
        train, held = _hf_records(p)
    else:
        if p.is_dir():
            raise UplabError(f"data path {str(p)!r} is a folder; format {fmt!r} needs a file")
        train, held = _records_from_file(src, p, fmt), None
    chosen = held if held is not None and split == "heldout" else train
    recs = [_normalise(src, r, f"{p} record {i}") for i, r in enumerate(chosen)]
    if held is None:  # no held-out split shipped: a stable hash split of the records
        recs = [r for r in recs if _is_heldout(r, src.heldout_percent) == (split == "heldout")]
    if not recs:
        raise UplabError(f"data path {str(p)!r} has no {split} records "
                         f"(heldout_percent={src.heldout_percent}); add records or change the split")
    return recs
