"""The one safetensors reader (builders, diff, manifests, the run cache): tensor by tensor, in
bounded chunks, never a whole model in memory.

A safetensors file is an 8-byte little-endian header length, a JSON header (dtype, shape and
byte range of every tensor) and the raw bytes. We parse the header ourselves, memory-map each
shard and hand out each tensor a chunk at a time as a view of the map (no copy out of the page
cache), releasing every chunk's pages from the process once it has been used. `safe_open`
instead copies each whole tensor out, and every page it touches stays resident while the shard
is open: memory then grows with the largest tensor and the shard, here it does not.

Every defect a download or a killed save leaves behind (a shard the index names but that is
missing, an index entry its shard lacks, a truncated file, a garbled header) is an UplabError
naming the file, raised when the checkpoint is opened, before any tensor is read.
"""

from __future__ import annotations

import json
import math
import mmap
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import torch

from harness import arch as arch_facts
from harness.errors import UplabError
from harness.limits import check_layer_count

INDEX = "model.safetensors.index.json"
SINGLE = "model.safetensors"

DTYPES: dict[str, torch.dtype] = {
    "F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
    "F8_E4M3": torch.float8_e4m3fn, "F8_E5M2": torch.float8_e5m2,
    "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8,
    "U8": torch.uint8, "U16": torch.uint16, "U32": torch.uint32, "U64": torch.uint64,
    "BOOL": torch.bool,
}
MAX_HEADER = 100 * 2**20  # safetensors' own limit
PAGE = mmap.PAGESIZE
FAULT_AROUND = 2**21  # upper bound of Linux's fault_around_bytes (one page table)
# Files smaller than this keep their pages while open: releasing them bounds nothing worth a
# system call per chunk (a tiny snapshot is 0.2 MB, and a session reads thousands of them).
RELEASE_MIN = 64 * 2**20


def read_config(path: str | Path) -> dict:
    """config.json of an HF checkpoint directory."""
    path = Path(path)
    cfg = path / "config.json"
    if not path.is_dir():
        raise UplabError(f"{path}: not a checkpoint directory (it does not exist or is a file)")
    if not cfg.is_file():
        raise UplabError(f"{path}: no config.json; expected a Hugging Face checkpoint directory")
    try:
        config = json.loads(cfg.read_text())
    except json.JSONDecodeError as e:
        raise UplabError(f"{cfg}: not valid JSON ({e.msg} at line {e.lineno})") from None
    except (OSError, UnicodeDecodeError) as e:
        raise UplabError(f"{cfg}: cannot read ({getattr(e, 'strerror', None) or e})") from None
    if not isinstance(config, dict):
        raise UplabError(f"{cfg}: expected a JSON object, got {type(config).__name__}")
    return config


def config_facts(config: dict, where: str | Path = "config.json") -> tuple[arch_facts.Architecture, int]:
    """Architecture and depth a config.json states. A depth it cannot read is an error, never a
    default (transformers would silently build its own 32 layers)."""
    kind = config.get("model_type")
    if not isinstance(kind, str) or not kind:
        raise UplabError(f"{where}: no model_type; cannot tell the architecture (add e.g. "
                         '"model_type": "mistral")')
    facts = arch_facts.get(kind)
    key = facts.layers_key
    if key not in config:
        raise UplabError(f"{where}: no {key}; cannot tell the depth (add \"{key}\": N)")
    return facts, check_layer_count(config[key], f"{where}: {key}")


def check_layers(names, facts: arch_facts.Architecture, depth: int, where: str | Path) -> None:
    """The weights hold exactly layers 0..depth-1: a config that says more would have
    transformers initialise the rest at random, one that says fewer would drop layers."""
    layers = {split[0] for name in names if (split := facts.split(name))}
    if layers != set(range(depth)):
        have = f"layers {min(layers)}-{max(layers)} ({len(layers)})" if layers else "no layers"
        raise UplabError(f"{where}: config.json gives {depth} layers but the weights hold {have}; "
                         f"fix {facts.layers_key} or re-save the checkpoint")


def read_model(path: str | Path) -> tuple[dict, arch_facts.Architecture, int]:
    """config.json of a checkpoint folder with its architecture and depth, all checked."""
    config = read_config(path)
    facts, depth = config_facts(config, Path(path) / "config.json")
    return config, facts, depth


@dataclass(frozen=True)
class TensorInfo:
    """Where one tensor's bytes are: absolute offset `start` in `file`, `nbytes` long."""

    name: str
    file: Path
    dtype: torch.dtype
    shape: tuple[int, ...]
    start: int
    nbytes: int

    @property
    def numel(self) -> int:
        return math.prod(self.shape)


def read_header(file: Path) -> dict[str, TensorInfo]:
    """Parse and check one safetensors file's header against the file's real size."""
    try:
        size = file.stat().st_size
        with open(file, "rb") as f:
            raw_len = f.read(8)
            n = int.from_bytes(raw_len, "little") if len(raw_len) == 8 else -1
            if n < 2 or n > min(MAX_HEADER, size - 8):
                raise UplabError(
                    f"{file}: not a safetensors file (bad header length); re-download or re-save it"
                )
            raw = f.read(n)
    except OSError as e:
        raise UplabError(f"{file}: cannot read ({e.strerror})") from None
    return dict(_parse_header(file, size, raw))


# A session opens the same snapshots hundreds of times; parsing is what costs, and its result
# depends only on these arguments (errors are raised again each time: lru_cache stores none).
@lru_cache(maxsize=4096)
def _parse_header(file: Path, size: int, raw: bytes) -> dict[str, TensorInfo]:
    try:
        header = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise UplabError(f"{file}: safetensors header is not valid JSON; re-download or re-save it") from None
    if not isinstance(header, dict):
        raise UplabError(f"{file}: safetensors header is not a JSON object; re-download or re-save it")
    base = 8 + len(raw)
    out: dict[str, TensorInfo] = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        try:
            dtype = DTYPES[entry["dtype"]]
            shape = tuple(int(s) for s in entry["shape"])
            begin, end = (int(o) for o in entry["data_offsets"])
        except (KeyError, TypeError, ValueError):
            raise UplabError(
                f"{file}: tensor {name} has a malformed header entry {entry!r}; re-save the checkpoint"
            ) from None
        if any(d < 0 for d in shape):  # (-2, -3) has a positive product: it would pass the size check
            raise UplabError(f"{file}: tensor {name} has a negative dimension in its shape {list(shape)}; "
                             "the file is corrupt, re-save it")
        nbytes = math.prod(shape) * dtype.itemsize
        if end - begin != nbytes or begin < 0:
            raise UplabError(
                f"{file}: tensor {name} spans {end - begin} bytes but its shape {list(shape)} "
                f"needs {nbytes}; the file is corrupt, re-save it"
            )
        if base + end > size:
            raise UplabError(
                f"{file}: truncated ({size} bytes, tensor {name} ends at byte {base + end}); "
                "re-download or re-save it"
            )
        out[name] = TensorInfo(name, file, dtype, shape, base + begin, nbytes)
    return dict(sorted(out.items()))  # by name, as safe_open lists a file's tensors


class Checkpoint:
    """A safetensors checkpoint (directory, sharded or not, or one .safetensors file).

    `chunks(name, n)` yields 1-D tensors of at most n elements, in the stored dtype, that are
    views of the file's memory map: the page cache is read in place, with no copy. Treat them as
    read-only. Once a chunk has been handed on, its pages are released from this process
    (`madvise(MADV_DONTNEED)`; the page cache keeps them; files under RELEASE_MIN are left
    alone), so resident memory stays at a few chunks however large the shard. Several threads may read one checkpoint at once.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.config: dict | None = None
        if self.path.is_file() and self.path.suffix == ".safetensors":
            self.tensors = read_header(self.path)
        else:
            self.config = read_config(self.path)  # a directory with config.json, or UplabError
            self.tensors = _directory_tensors(self.path)
        self._maps: dict[Path, mmap.mmap] = {}
        self._lock = threading.Lock()

    @property
    def model_type(self) -> str | None:
        return (self.config or {}).get("model_type")

    def listed(self) -> list[str]:
        """Tensor names as the checkpoint lists them: its index's order, else by name."""
        return list(self.tensors)

    def names(self) -> list[str]:
        """Tensor names in on-disk order (file, then offset): reads stay sequential."""
        return sorted(self.tensors, key=lambda k: (str(self.tensors[k].file), self.tensors[k].start))

    def _map(self, file: Path) -> mmap.mmap:
        with self._lock:
            if file not in self._maps:
                try:
                    with open(file, "rb") as f:
                        # private and writable only so torch accepts the buffer; never written
                        self._maps[file] = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_COPY)
                except (OSError, ValueError) as e:
                    raise UplabError(f"{file}: cannot map ({getattr(e, 'strerror', None) or e})") from None
            return self._maps[file]

    def info(self, name: str) -> TensorInfo:
        if name not in self.tensors:
            raise UplabError(f"{self.path}: tensor {name} is missing")
        return self.tensors[name]

    def chunks(self, name: str, max_elems: int) -> Iterator[torch.Tensor]:
        info = self.info(name)
        mm, item, step = self._map(info.file), info.dtype.itemsize, max(1, max_elems)
        if info.numel == 0:
            yield torch.empty(0, dtype=info.dtype)
        for first in range(0, info.numel, step):
            k = min(step, info.numel - first)
            offset = info.start + first * item
            yield torch.frombuffer(mm, dtype=info.dtype, count=k, offset=offset)
            last = first + k >= info.numel
            _release(mm, offset, k * item, ahead=last)

    def read(self, name: str) -> torch.Tensor:
        """One whole tensor, in its own memory, with its shape."""
        info = self.info(name)
        if info.numel == 0:
            return torch.empty(info.shape, dtype=info.dtype)
        mm = self._map(info.file)
        out = torch.frombuffer(mm, dtype=info.dtype, count=info.numel, offset=info.start).clone()
        _release(mm, info.start, info.nbytes)
        return out.reshape(info.shape)

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Every tensor in listed order (as safetensors' load_file), each in its own memory."""
        tensors = {name: self.read(name) for name in self.names()}  # read in disk order
        return {name: tensors[name] for name in self.listed()}

    def close(self) -> None:
        # Drop our references only: each chunk tensor holds one on its map (torch.frombuffer),
        # so a map is unmapped when its last chunk dies. mmap.close() would unmap it under a
        # live chunk (torch does not keep a buffer export) and a later read would crash.
        with self._lock:
            self._maps.clear()

    def __enter__(self) -> Checkpoint:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _release(mm: mmap.mmap, offset: int, nbytes: int, ahead: bool = False) -> None:
    """Drop the pages of a used chunk from this process's resident set (not from the page cache).

    A page fault maps a whole aligned window around the faulting page (the kernel's
    fault-around, 64 KiB by default), so a chunk's faults also map pages just before it (already
    released) and just after it. The released range therefore reaches FAULT_AROUND back, and at
    a tensor's end also FAULT_AROUND ahead. A page that another thread still reads is simply
    faulted in again: correct, only slower.
    """
    if len(mm) < RELEASE_MIN:
        return
    lo = max(0, (offset - FAULT_AROUND) // PAGE * PAGE)
    end = offset + nbytes + (FAULT_AROUND if ahead else 0)
    hi = min(len(mm), -(-end // PAGE) * PAGE if ahead else end // PAGE * PAGE)
    if hi > lo:
        mm.madvise(mmap.MADV_DONTNEED, lo, hi - lo)


def _resolve(path: Path) -> Path:
    try:
        return path.resolve()
    except (OSError, RuntimeError):  # a symlink loop (RuntimeError before Python 3.13)
        raise UplabError(f"{path}: cannot resolve the path (a symlink loop?); re-save the checkpoint") from None


def _directory_tensors(path: Path) -> dict[str, TensorInfo]:
    index = path / INDEX
    if index.is_file():
        try:
            weight_map = json.loads(index.read_bytes())["weight_map"]  # bytes: JSON is UTF-8 by definition
            if not isinstance(weight_map, dict):
                raise TypeError
        except (ValueError, KeyError, TypeError):  # ValueError: bad JSON or bytes that are not UTF-8
            raise UplabError(
                f"{index}: not a safetensors index (no weight_map); re-save the checkpoint"
            ) from None
        headers: dict[str, dict[str, TensorInfo]] = {}
        root = path.resolve()
        for shard in weight_map.values():
            # an index is data from a download: it may name only files inside the checkpoint
            if not isinstance(shard, str) or _resolve(path / shard).parent != root:
                raise UplabError(f"{index}: shard {shard!r} is not a file name inside {path}; "
                                 "an index may only name shards in its own folder")
        for shard in sorted(set(weight_map.values())):
            file = path / shard
            if not file.is_file():
                raise UplabError(
                    f"{path}: shard {shard} named in {INDEX} is missing; re-download it or re-save "
                    "the checkpoint"
                )
            headers[shard] = read_header(file)
        out = {}
        for name, shard in weight_map.items():
            if name not in headers[shard]:
                raise UplabError(
                    f"{path}: {INDEX} puts {name} in {shard}, which lacks it; re-save the checkpoint"
                )
            out[name] = headers[shard][name]
        return out
    if (path / SINGLE).is_file():
        return read_header(path / SINGLE)
    bins = sorted(p.name for p in path.glob("*.bin"))
    hint = (f" (it has {', '.join(bins[:3])}: convert it with save_pretrained(..., "
            "safe_serialization=True))" if bins else "")
    raise UplabError(f"{path}: no {SINGLE} or {INDEX}; uplab reads safetensors checkpoints only{hint}")
