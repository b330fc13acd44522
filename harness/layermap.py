"""The layer map: for every output layer of an upscale, where it came from and how it was scaled."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Role = Literal["orig", "dup"]


@dataclass(frozen=True)
class LayerEntry:
    index: int  # output layer
    source: int  # source layer it was copied from
    role: Role  # orig: the first unscaled copy of its source; dup: every other copy
    slice: int  # index of the config slice that emitted it
    t: float  # position inside the slice, as mergekit interpolates gradients (0..1)
    scales: dict[str, float] = field(default_factory=dict)  # short module -> scale on .weight

    @property
    def zeroed(self) -> tuple[str, ...]:
        return tuple(m for m, s in self.scales.items() if s == 0.0)


@dataclass(frozen=True)
class LayerMap:
    source_layers: int  # depth of the source model
    layers: tuple[LayerEntry, ...]
    extra_scales: dict[str, float] = field(default_factory=dict)  # embed_tokens, norm, lm_head

    @property
    def num_layers(self) -> int:
        return len(self.layers)

    def roles(self) -> list[Role]:
        return [e.role for e in self.layers]

    def indices(self, role: Role) -> list[int]:
        return [e.index for e in self.layers if e.role == role]

    def slice_starts(self) -> list[int]:
        """Output indices where a new slice begins (excluding 0)."""
        return [e.index for prev, e in zip(self.layers, self.layers[1:]) if e.slice != prev.slice]

    def source_of(self, index: int) -> int:
        return self.layers[index].source

    def anchor_of(self, index: int) -> int | None:
        """The nearest orig layer before a dup layer's run of dups (the seed's 'anchor')."""
        i = index
        while i >= 0 and self.layers[i].role == "dup":
            i -= 1
        return i if i >= 0 and i != index else None

    @classmethod
    def identity(cls, num_layers: int) -> "LayerMap":
        """The map of a model that was not upscaled (every layer orig, one slice)."""
        return cls(num_layers, tuple(LayerEntry(i, i, "orig", 0, 0.0) for i in range(num_layers)))
