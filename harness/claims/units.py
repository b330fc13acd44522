"""The units of a within-run form: copies of one source layer are one unit, not several.

On a manifest (one run trained elsewhere) there are no seeds, and a claim's within-run form uses
layers as its units instead. But an upscale's output layers that copy one source layer are not
independent observations: they start identical and, on a real upscale, change almost alike (two
copies changed with cosine >= 0.998). Counting each copy as a unit would count one observation
several times and make the p-value smaller than the evidence allows (pseudo-replication). So
every within-run form goes through these functions, which average per-output-layer values over
the output layers that share a source layer (within one role where the form compares roles), and
the n of the test is the number of independent source layers.

An orig layer is the only orig copy of its source, so the orig group is unchanged; the duplicate
group shrinks to one value per duplicated source layer (8-layer contiguous: 6 dup layers -> 3 units).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from harness.layermap import LayerMap, Role

# `Within.unit` texts: what one value of the within-run test stands for.
SOURCE_LAYER = "source layer (copies of one source averaged)"
SOURCE_LAYER_BY_ROLE = "source layer per role (dup copies of one source averaged; orig layers as they are)"
DUP_SOURCE_PAIRED = "duplicated source layer (its dup copies averaged, paired with its own orig copy)"


def by_source(values: Mapping[int, float], lm: LayerMap, role: Role | None = None) -> dict[int, float]:
    """Per source layer: the mean of `values` (output layer -> value) over the output layers
    copied from it, only those of `role` when given. Keys sorted by source layer."""
    groups: dict[int, list[float]] = {}
    for layer, value in values.items():
        if not 0 <= layer < lm.num_layers:
            raise ValueError(f"output layer {layer} is not in the layer map (it has {lm.num_layers} layers)")
        entry = lm.layers[layer]
        if role is None or entry.role == role:
            groups.setdefault(entry.source, []).append(float(value))
    return {source: float(np.mean(vs)) for source, vs in sorted(groups.items())}


def role_units(values: Mapping[int, float], lm: LayerMap) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """(dup units, orig units) for a form that compares duplicates with originals: within each
    role, one value per source layer."""
    dup = tuple(by_source(values, lm, "dup").values())
    orig = tuple(by_source(values, lm, "orig").values())
    if not dup or not orig:
        raise ValueError("a dup-vs-orig form needs values of at least one dup and one orig layer")
    return dup, orig


def dup_units(values: Mapping[int, float], lm: LayerMap) -> tuple[float, ...]:
    """One value per duplicated source layer (a one-sample form over the duplicates)."""
    units = tuple(by_source(values, lm, "dup").values())
    if not units:
        raise ValueError("a form over the duplicates needs values of at least one dup layer")
    return units


def source_pairs(values: Mapping[int, float], lm: LayerMap) -> dict[int, tuple[float, float]]:
    """Per duplicated source layer: (mean of `values` over its dup copies, value of its orig copy),
    a depth-matched pair (each duplicate against its own source). Keys sorted by source layer."""
    dup, orig = by_source(values, lm, "dup"), by_source(values, lm, "orig")
    if not dup:
        raise ValueError("a paired form needs values of at least one dup layer")
    missing = [s for s in dup if s not in orig]
    if missing:
        raise ValueError(f"duplicated source layers {missing} have no orig copy with a value to pair with")
    return {s: (dup[s], orig[s]) for s in dup}


def slice_units(values: Mapping[tuple[tuple[int, ...], str], float], lm: LayerMap) -> tuple[float, ...]:
    """Per (a slice's output layers, module) values -> one value per (the slice's source layers,
    module): slices that copy the same source layers (the seed's layout: two slices of copies of
    one range) start identical, so they are averaged into one unit per module. Undefined (NaN)
    values are left out; a unit with none defined is no unit."""
    groups: dict[tuple[tuple[int, ...], str], list[float]] = {}
    for (layers, module), value in values.items():
        if not np.isfinite(value):
            continue
        sources = tuple(lm.source_of(i) for i in layers)
        groups.setdefault((sources, module), []).append(float(value))
    if not groups:
        raise ValueError("no defined (slice, module) values to form units from")
    return tuple(float(np.mean(vs)) for vs in groups.values())
