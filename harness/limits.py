"""Bounds on sizes read from user input, checked in constant time before any work scales with them."""

from __future__ import annotations

from harness.errors import UplabError

# The deepest source or upscale uplab accepts. Released models have a few hundred layers at most;
# the bound is checked in constant time before any per-layer work, so a typo such as
# `layer_range: [0, 99999999999999999999]` or `num_hidden_layers: 1e12` is one error line
# instead of a layer map that grows until memory runs out.
MAX_LAYERS = 4096


def check_layer_count(value, what: str) -> int:
    """`value` as a layer count in [1, MAX_LAYERS], or one UplabError naming `what`."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise UplabError(f"{what} is {value!r}, not a whole number of layers")
    if not 1 <= value <= MAX_LAYERS:
        raise UplabError(f"{what} is {value}; uplab handles 1 to {MAX_LAYERS} layers")
    return value
