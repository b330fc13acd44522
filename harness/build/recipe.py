"""The tensor recipe of an upscale: which source tensor, scaled by what, becomes which output.

Pure: a plan, the source's tensor names and its config in; a list and a new config out.
Both the in-memory and the on-disk native builds execute the same recipe.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

from harness.checkpoint import check_layers, config_facts
from harness.errors import UplabError
from harness.layermap import LayerMap
from harness.plan import Plan, check_depth


@dataclass(frozen=True)
class Step:
    out: str
    source: str
    scale: float


def recipe(plan: Plan, names: list[str], config: dict) -> tuple[list[Step], LayerMap]:
    facts, depth = config_facts(config)
    check_layers(names, facts, depth, "the source")
    check_depth(plan, depth)
    lm = plan.layer_map(depth, facts.name)
    per_layer: dict[int, list[tuple[str, str]]] = {}
    edges = []
    for name in names:
        split = facts.split(name)
        if split:
            per_layer.setdefault(split[0], []).append((name, split[1]))
        else:
            edges.append(name)
    if config.get("tie_word_embeddings") and facts.lm_head in edges:
        edges.remove(facts.lm_head)  # tied: saved once, as the embeddings (as save_pretrained does)
    last = len(plan.slices) - 1
    steps = [Step(n, n, plan.scale(0, n, 0.0)) for n in edges if n == facts.embeddings]
    for e in lm.layers:
        if e.source not in per_layer:
            raise UplabError(f"the source checkpoint has no tensors for layer {e.source}")
        for name, inner in per_layer[e.source]:
            steps.append(Step(facts.layer_tensor(e.index, inner), name, plan.scale(e.slice, name, e.t)))
    # everything after the layers takes the last slice's parameters, as in mergekit
    steps += [Step(n, n, plan.scale(last, n, 0.0)) for n in edges if n != facts.embeddings]
    return steps, lm


def upscaled_config(config: dict, lm: LayerMap) -> dict:
    """The source config with the new depth and every per-layer list re-indexed by the map."""
    facts, _ = config_facts(config)
    out = copy.deepcopy(config)
    out[facts.layers_key] = lm.num_layers
    for key in facts.per_layer_keys:
        values = config.get(key)
        if values is None:
            continue
        if len(values) != lm.source_layers:
            raise UplabError(
                f"config.json {key} has {len(values)} entries for {lm.source_layers} layers"
            )
        out[key] = [values[e.source] for e in lm.layers]
    return out
