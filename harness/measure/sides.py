"""The two kinds of input a weight diff takes (a checkpoint on disk, or a state dict in memory),
read alike: names, shapes, chunks; and what must match between the two before a byte is read."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path

import torch

from harness import arch as arch_facts
from harness.checkpoint import Checkpoint
from harness.errors import UplabError

StateDict = Mapping[str, torch.Tensor]
Source = StateDict | Checkpoint | str | Path


class Side:
    """Names, shapes and chunked reads of one side, whether a checkpoint or a state dict."""

    def __init__(self, source: Source, label: str):
        self.owned = isinstance(source, (str, Path))
        if self.owned:
            source = Checkpoint(source)
        self.source = source
        if isinstance(source, Checkpoint):
            self.label = f"{label} ({source.path})"
            self.model_type = source.model_type
            self.shapes = {n: source.tensors[n].shape for n in source.names()}
        elif isinstance(source, Mapping):
            self.label = label
            self.model_type = None
            self.shapes = {n: tuple(t.shape) for n, t in source.items()}
        else:
            raise TypeError(f"expected a state dict, a Checkpoint or a path, got {type(source).__name__}")

    def chunks(self, name: str, n: int) -> Iterator[torch.Tensor]:
        if isinstance(self.source, Checkpoint):
            return self.source.chunks(name, n)
        flat = self.source[name].detach().reshape(-1)
        return iter(flat.split(n)) if flat.numel() else iter([flat])

    def close(self) -> None:
        if self.owned:
            self.source.close()


def check_pair(a: Side, b: Side, facts: arch_facts.Architecture) -> None:
    """Everything that can be wrong before reading a byte: architecture, depth, names, shapes."""
    if a.model_type and b.model_type and a.model_type != b.model_type:
        raise UplabError(
            f"{a.label} is a {a.model_type} model but {b.label} is a {b.model_type} model; "
            "diff two checkpoints of one architecture"
        )
    da, db = depth(a.shapes, facts), depth(b.shapes, facts)
    if da != db:
        raise UplabError(
            f"{a.label} has {da} layers but {b.label} has {db}; diff checkpoints of the same depth "
            "(for an upscale: the upscaled model before training against the tuned one)"
        )
    for x, y in ((a, b), (b, a)):
        missing = [n for n in x.shapes if n not in y.shapes]
        if missing:
            more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
            raise UplabError(
                f"{y.label} lacks {missing[0]}{more} that {x.label} has; "
                "diff two checkpoints of the same model (re-save the incomplete one)"
            )
    for n, shape in a.shapes.items():
        if b.shapes[n] != shape:
            raise UplabError(
                f"{n} has shape {list(shape)} in {a.label} but {list(b.shapes[n])} in {b.label}; "
                "diff two checkpoints of the same model"
            )


def depth(shapes: Mapping[str, tuple], facts: arch_facts.Architecture) -> int:
    layers = [s[0] for s in map(facts.split, shapes) if s]
    return max(layers) + 1 if layers else 0


def row_key(name: str, facts: arch_facts.Architecture) -> tuple[int | None, str]:
    split = facts.split(name)
    if split:
        layer, inner = split
        return layer, facts.module_of(inner) or _strip(inner)
    return None, facts.extra_module_of(name) or _strip(name)


def _strip(path: str) -> str:
    for suffix in (".weight", ".bias"):
        if path.endswith(suffix):
            return path[: -len(suffix)]
    return path
