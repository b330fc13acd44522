"""The linter: what mergekit silently accepts in a passthrough plan (DESIGN §3)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from harness import arch as arch_facts
from harness.limits import check_layer_count
from harness.plan import Plan
from harness.plan_schema import ConditionalParameter

GROUPS = {"mlp", "self_attn"}  # filters that name a block on purpose


@dataclass(frozen=True)
class Finding:
    level: Literal["error", "warning"]
    code: str
    message: str

    def __str__(self) -> str:
        return f"{self.level}: [{self.code}] {self.message}"


def lint(plan: Plan, num_layers: int, model_type: str = arch_facts.FALLBACK) -> list[Finding]:
    check_layer_count(num_layers, f"{plan.origin}: the source's depth")  # bounds every loop below
    facts = arch_facts.get(model_type)
    found: list[Finding] = []
    found += _ranges(plan, num_layers)
    found += _uncovered(plan, num_layers)
    found += _parameters(plan, num_layers, facts)
    if not errors(found):  # a range past the end has no layer map to check the edges of
        found += _edge_scales(plan, num_layers, model_type, facts)
    return found


def errors(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.level == "error"]


def _ranges(plan: Plan, num_layers: int) -> list[Finding]:
    out = []
    for i, (a, b) in enumerate(plan.ranges()):
        if b > num_layers:
            out.append(Finding("error", "range-past-end",
                f"slice {i} layer_range [{a}, {b}] reaches past the source's {num_layers} layers "
                f"(ranges are half-open: the last layer is [{num_layers - 1}, {num_layers}])"))
        elif a == b:
            out.append(Finding("warning", "empty-range",
                f"slice {i} layer_range [{a}, {b}] is empty and adds no layer (half-open "
                f"[start, end): one layer is [{a}, {a + 1}])"))
    return out


def _uncovered(plan: Plan, num_layers: int) -> list[Finding]:
    covered = {layer for a, b in plan.ranges() for layer in range(a, min(b, num_layers))}
    missing = [layer for layer in range(num_layers) if layer not in covered]
    if not missing:
        return []
    return [Finding("warning", "layer-dropped",
        f"source layer{'s' if len(missing) > 1 else ''} {_spans(missing)} "
        f"{'are' if len(missing) > 1 else 'is'} in no slice: the upscale drops "
        f"{'them' if len(missing) > 1 else 'it'}")]


def _spans(layers: list[int]) -> str:
    spans, start = [], layers[0]
    for prev, cur in zip(layers, layers[1:] + [None]):
        if cur != prev + 1:
            spans.append(str(start) if start == prev else f"{start}-{prev}")
            start = cur
    return ", ".join(spans)


def _scopes(plan: Plan):
    """(where, slice indices it applies to, parameters dict) for every parameter block."""
    everywhere = list(range(len(plan.slices)))
    if plan.config.parameters:
        yield "global parameters", everywhere, plan.config.parameters
    for i, s in enumerate(plan.slices):
        if s.parameters:
            yield f"slice {i} parameters", [i], s.parameters
        for src in s.sources:
            if src.parameters:
                yield f"slice {i} source parameters", [i], src.parameters


def _conditions(setting) -> list[ConditionalParameter]:
    if isinstance(setting, ConditionalParameter):
        return [setting]
    if isinstance(setting, list):
        return [c for c in setting if isinstance(c, ConditionalParameter)]
    return []


def _tensors(plan: Plan, slices: list[int], num_layers: int, facts) -> list[str]:
    names = []
    last = len(plan.slices) - 1
    for i in slices:
        a, b = plan.ranges()[i]
        for layer in range(a, min(b, num_layers)):
            names += [facts.layer_tensor(layer, p + ".weight") for p in facts.modules.values()]
        if i == 0:
            names.append(facts.embeddings)
        if i == last:
            names += [facts.final_norm, facts.lm_head]
    return names


def _parameters(plan: Plan, num_layers: int, facts) -> list[Finding]:
    out = []
    for where, slices, params in _scopes(plan):
        for name in params:
            if name != "scale":
                out.append(Finding("warning", "unused-parameter",
                    f"{where}: passthrough ignores parameter {name!r} (it reads only `scale`)"))
        tensors = _tensors(plan, slices, num_layers, facts)
        if not tensors:  # an empty slice: its own warning says so
            continue
        for cond in _conditions(params.get("scale")):
            if cond.filter in (None, "*"):
                continue
            out += _filter_findings(where, cond.filter, tensors, facts)
    return out


def _filter_findings(where: str, text: str, tensors: list[str], facts) -> list[Finding]:
    hits = [t for t in tensors if text in t]
    if not hits:
        return [Finding("warning", "filter-matches-nothing",
            f"{where}: filter {text!r} matches no tensor in its slices (filters are substrings "
            f"of names like {tensors[0]!r})")]
    out = []
    named = re.search(r"layers\.(\d+)", text)
    layers = {s[0] for t in hits if (s := facts.split(t))}
    if named and layers - {int(named.group(1))}:
        extra = sorted(layers - {int(named.group(1))})
        out.append(Finding("warning", "filter-too-broad",
            f"{where}: filter {text!r} also matches layer{'s' if len(extra) > 1 else ''} "
            f"{_spans(extra)} (a substring match: end it with a dot, e.g. "
            f"'layers.{named.group(1)}.')"))
    modules = sorted({facts.module_of(s[1]) or s[1] for t in hits if (s := facts.split(t))})
    extras = sorted({m for t in hits if (m := facts.extra_module_of(t))})
    if named:  # a layer filter means every module of that layer
        return out
    if len(modules) + len(extras) > 1 and text.strip(".") not in GROUPS:
        out.append(Finding("warning", "filter-too-broad",
            f"{where}: filter {text!r} matches {len(modules) + len(extras)} module types "
            f"({', '.join(modules + extras)}); name the one you mean, e.g. 'o_proj'"))
    elif extras:
        out.append(Finding("warning", "filter-hits-edges",
            f"{where}: filter {text!r} also matches {', '.join(extras)}"))
    return out


def _edge_scales(plan: Plan, num_layers: int, model_type: str, facts) -> list[Finding]:
    lm = plan.layer_map(num_layers, model_type)
    first, last = 0, len(plan.slices) - 1
    tensor = {"embed_tokens": facts.embeddings, "norm": facts.final_norm, "lm_head": facts.lm_head}
    out = []
    for module, scale in lm.extra_scales.items():
        if scale != 1.0:
            s, rule = ((first, "embeddings with the first slice's parameters")
                       if module == "embed_tokens" else
                       (last, "the final norm and lm_head with the last slice's parameters"))
            out.append(Finding("warning", "scale-hits-edges",
                f"the scale {scale:g} that slice {s} resolves also applies to {tensor[module]} "
                f"(mergekit scales {rule}); give the scale a filter such as 'o_proj'"))
    return out
