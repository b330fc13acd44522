"""Strategies that write mergekit passthrough configs (returned as Plans, YAML in `plan.text`).

Every duplicate gets `o_proj` and `down_proj` scaled to 0, so it starts as an identity map
through the residual stream, as in the seed's 39B upscale.
"""

from __future__ import annotations

import yaml

from harness.errors import UplabError
from harness.limits import MAX_LAYERS, check_layer_count
from harness.plan import Plan, parse_plan

ZERO_DUPLICATE = [
    {"filter": "o_proj", "value": 0.0},
    {"filter": "down_proj", "value": 0.0},
    {"value": 1.0},
]


def _slice(model: str, a: int, b: int, dup: bool) -> dict:
    source = {"model": model, "layer_range": [a, b]}
    if dup:
        source["parameters"] = {"scale": [dict(c) for c in ZERO_DUPLICATE]}
    return {"sources": [source]}


def _emit(name: str, model: str, slices: list[tuple[int, int, bool]]) -> Plan:
    merged: list[tuple[int, int, bool]] = []
    for a, b, dup in slices:
        if a == b:
            continue
        # adjacent original ranges read better as one slice, as a person would write them
        if merged and not dup and not merged[-1][2] and merged[-1][1] == a:
            merged[-1] = (merged[-1][0], b, False)
        else:
            merged.append((a, b, dup))
    config = {
        "merge_method": "passthrough",
        "slices": [_slice(model, a, b, dup) for a, b, dup in merged],
    }
    text = f"# uplab strategy: {name}\n" + yaml.safe_dump(config, sort_keys=False, default_flow_style=None)
    return parse_plan(text, origin=f"strategy {name}")


def _check_range(start: int, end: int, num_layers: int) -> None:
    check_layer_count(num_layers, "num_layers")
    if not 0 <= start < end <= num_layers:
        raise UplabError(
            f"range [{start}, {end}) must satisfy 0 <= start < end <= num_layers ({num_layers})"
        )


def _check_copies(copies: int, start: int, end: int, num_layers: int) -> None:
    if copies < 1:
        raise UplabError(f"copies must be >= 1, got {copies}")
    # before any slice list is built: copies is a multiplier on it
    total = num_layers + copies * (end - start)
    if total > MAX_LAYERS:
        raise UplabError(f"{copies} copies of [{start}, {end}) make {total} layers; uplab builds at "
                         f"most {MAX_LAYERS}")


def block(k: int, start: int, end: int, *, num_layers: int, copies: int = 1,
          model: str = "base") -> Plan:
    """Each block of k layers in [start, end) is followed by `copies` zeroed copies of itself."""
    return _blocked(f"block(k={k}, [{start}, {end}), copies={copies})", k, start, end,
                    num_layers, copies, model)


def _blocked(name: str, k: int, start: int, end: int, num_layers: int, copies: int,
             model: str) -> Plan:
    _check_range(start, end, num_layers)
    _check_copies(copies, start, end, num_layers)
    if k < 1:
        raise UplabError(f"block size k must be >= 1, got {k}")
    slices = [(0, start, False)]
    for a in range(start, end, k):
        b = min(a + k, end)
        slices.append((a, b, False))
        slices += [(a, b, True)] * copies
    slices.append((end, num_layers, False))
    return _emit(name, model, slices)


def contiguous(start: int, end: int, *, num_layers: int, copies: int = 2,
               model: str = "base") -> Plan:
    """The seed's 39B layout: originals through `end`, then `copies` zeroed copies of [start, end)."""
    _check_range(start, end, num_layers)
    _check_copies(copies, start, end, num_layers)
    slices = [(0, end, False)] + [(start, end, True)] * copies + [(end, num_layers, False)]
    return _emit(f"contiguous([{start}, {end}), copies={copies})", model, slices)


def interleaved(start: int, end: int, *, num_layers: int, copies: int = 2,
                model: str = "base") -> Plan:
    """The seed's proposed technique done right: each layer followed by its own zeroed copies."""
    return _blocked(f"interleaved([{start}, {end}), copies={copies})", 1, start, end,
                    num_layers, copies, model)


def single(layer: int, *, num_layers: int, copies: int = 1, model: str = "base") -> Plan:
    """One layer, duplicated `copies` times right after itself."""
    _check_range(layer, layer + 1, num_layers)
    return contiguous(layer, layer + 1, num_layers=num_layers, copies=copies, model=model)


def every(n: int, *, num_layers: int, model: str = "base") -> Plan:
    """LLaMA Pro: after every n original layers, a zeroed copy of the group's last layer."""
    check_layer_count(num_layers, "num_layers")
    if not 1 <= n <= num_layers:
        raise UplabError(f"every(n) needs 1 <= n <= num_layers ({num_layers}), got {n}")
    slices = []
    for a in range(0, num_layers, n):
        b = min(a + n, num_layers)
        slices += [(a, b, False), (b - 1, b, True)]
    return _emit(f"every(n={n})", model, slices)


STRATEGIES = {
    "contiguous": contiguous,
    "interleaved": interleaved,
    "single": single,
    "block": block,
    "every": every,
}
