"""Plans: mergekit passthrough YAML, validated and resolved to a layer map without mergekit.

A Plan never touches weights: it is the value the linter, the renderer and both builders share.
It is parsed by `harness.plan_schema`, a copy of mergekit's config schema that imports neither
mergekit nor torch, so `uplab plan` answers at once; its scale resolver copies mergekit's (a
filter, a gradient or a precedence rule means here exactly what it means to `mergekit-yaml`), and
tests/test_plan_mergekit.py holds both to mergekit itself. The reference builder, which runs
mergekit, converts `plan.text` with mergekit's own schema when it builds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import yaml
from pydantic import ValidationError

from harness import arch as arch_facts
from harness.errors import UplabError, yaml_problem
from harness.layermap import LayerEntry, LayerMap
from harness.limits import MAX_LAYERS, check_layer_count
from harness.plan_schema import (MERGE_METHODS, ConditionalParameter, MergeConfiguration,
                                 OutputSliceDefinition, resolve_parameter)
from harness.schema import invalid


@dataclass(frozen=True)
class Plan:
    """A validated passthrough config. `text` is the YAML as given: the plan's identity (two plans
    are equal when their texts are) and what a run spec hashes."""

    config: MergeConfiguration = field(compare=False)
    text: str
    origin: str = field(default="<string>", compare=False)

    @property
    def slices(self) -> list[OutputSliceDefinition]:
        return list(self.config.slices or [])

    def ranges(self) -> list[tuple[int, int]]:
        return [tuple(s.sources[0].layer_range) for s in self.slices]

    @cached_property
    def source_model(self) -> str:
        return str(self.slices[0].sources[0].model.model.path)

    def scale(self, slice_index: int, tensor_name: str, t: float) -> float:
        """The factor mergekit's passthrough multiplies `tensor_name` by (1.0 where none is set).

        Precedence as in mergekit's ConfigReader: the source's parameters, then the slice's,
        then the config's; in each, the first matching filter wins.
        """
        out_slice = self.slices[slice_index]
        scopes = [src.parameters for src in out_slice.sources]
        scopes += [out_slice.parameters, self.config.parameters]
        value = resolve_parameter("scale", scopes, tensor_name=tensor_name, t=t)
        return 1.0 if value is None else float(value)

    def layer_map(self, num_layers: int, model_type: str = arch_facts.FALLBACK) -> LayerMap:
        """Resolve every output layer; `num_layers` is the source model's depth."""
        check_layer_count(num_layers, f"{self.origin}: the source's depth")
        check_depth(self, num_layers)  # before any entry is built: the ranges bound the map
        facts = arch_facts.get(model_type)
        entries: list[LayerEntry] = []
        for s_idx, (start, end) in enumerate(self.ranges()):
            n = end - start
            for offset in range(max(0, n)):
                # mergekit interpolates gradients with t = offset / (n - 1), or t = 1 alone
                t = offset / (n - 1) if n > 1 else 1.0
                source = start + offset
                scales = {
                    short: self.scale(s_idx, facts.layer_tensor(source, path + ".weight"), t)
                    for short, path in facts.modules.items()
                }
                entries.append(LayerEntry(len(entries), source, "dup", s_idx, t, scales))
        entries = _assign_roles(entries)
        first, last = 0, len(self.slices) - 1
        extra = {
            "embed_tokens": self.scale(first, facts.embeddings, 0.0),
            "norm": self.scale(last, facts.final_norm, 0.0),
            "lm_head": self.scale(last, facts.lm_head, 0.0),
        }
        return LayerMap(num_layers, tuple(entries), extra)


def _assign_roles(entries: list[LayerEntry]) -> list[LayerEntry]:
    """orig: the first unscaled copy of a source layer (else its first copy); dup: the rest."""
    chosen: dict[int, int] = {}
    for e in entries:
        unscaled = all(s == 1.0 for s in e.scales.values())
        if e.source not in chosen or (unscaled and not _unscaled(entries[chosen[e.source]])):
            chosen[e.source] = e.index
    return [
        LayerEntry(e.index, e.source, "orig" if chosen[e.source] == e.index else "dup",
                   e.slice, e.t, e.scales)
        for e in entries
    ]


def _unscaled(e: LayerEntry) -> bool:
    return all(s == 1.0 for s in e.scales.values())


def parse_plan(text: str, origin: str = "<string>") -> Plan:
    """Parse mergekit YAML; every problem becomes one UplabError line naming the fix."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise UplabError(f"{origin}: malformed YAML{yaml_problem(e)}") from None
    if not isinstance(raw, dict):
        raise UplabError(f"{origin}: expected a mergekit config (a YAML mapping), got {type(raw).__name__}")
    method = raw.get("merge_method")
    if method != "passthrough":
        if method is None:
            raise UplabError(f"{origin}: no merge_method; uplab plans need `merge_method: passthrough`")
        kind = "a mergekit method, but not an upscale" if method in MERGE_METHODS else "unknown to mergekit"
        raise UplabError(
            f"{origin}: merge_method {method!r} is {kind}; uplab plans need `merge_method: passthrough`"
        )
    if not raw.get("slices"):
        raise UplabError(f"{origin}: a passthrough plan needs a non-empty `slices:` list")
    _check_raw_ranges(raw["slices"], origin)
    try:
        config = MergeConfiguration.model_validate(raw)
    except ValidationError as e:
        raise invalid(e, f"{origin}: invalid config at ", where="the top level") from None
    except (RuntimeError, ValueError) as e:
        raise UplabError(f"{origin}: invalid config: {e}") from None
    _check_structure(config, origin)
    _check_scales(config, origin)
    return Plan(config, text, origin)


def _check_scales(config: MergeConfiguration, origin: str) -> None:
    """mergekit's schema takes any scalar as a scale and fails only mid-merge; fail here."""
    def numbers(value, where):
        values = value if isinstance(value, list) else [value]
        for v in values:
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise UplabError(f"{origin}: {where} scale {v!r} is not a number; "
                                 "a scale is a number or a list of numbers (a gradient)")

    scopes = [("global", config.parameters)]
    for i, s in enumerate(config.slices or []):
        scopes.append((f"slice {i}", s.parameters))
        scopes += [(f"slice {i} source", src.parameters) for src in s.sources]
    for where, params in scopes:
        setting = (params or {}).get("scale")
        if setting is None:
            continue
        conds = setting if isinstance(setting, list) else [setting]
        if all(isinstance(c, ConditionalParameter) for c in conds):
            for c in conds:
                numbers(c.value, where)
        else:
            numbers(setting, where)


def _check_raw_ranges(slices, origin: str) -> None:
    """Layer ranges as written, before pydantic's lax mode turns `true` or "4" into an int."""
    if not isinstance(slices, list):
        return  # the schema names the problem
    total = 0
    for i, s in enumerate(slices):
        sources = s.get("sources") if isinstance(s, dict) else None
        for src in sources if isinstance(sources, list) else ():
            r = src.get("layer_range") if isinstance(src, dict) else None
            if r is None:
                continue
            if not (isinstance(r, list) and len(r) == 2
                    and all(type(x) is int for x in r)):  # noqa: E721 - bool is an int subclass
                raise UplabError(f"{origin}: slice {i} layer_range {r!r} is not two whole numbers; "
                                 "write it as [start, end], e.g. [0, 4]")
            if max(r) > MAX_LAYERS:
                raise UplabError(f"{origin}: slice {i} layer_range {r} reaches past layer "
                                 f"{MAX_LAYERS}, the deepest model uplab handles")
            total += max(0, r[1] - max(0, r[0]))
    if total > MAX_LAYERS:
        raise UplabError(f"{origin}: the slices add up to {total} layers; uplab builds at most "
                         f"{MAX_LAYERS}")


def _check_structure(config: MergeConfiguration, origin: str) -> None:
    """The errors (not warnings) of DESIGN §3 that need no source model."""
    for i, s in enumerate(config.slices or []):
        if len(s.sources) != 1:
            raise UplabError(
                f"{origin}: slice {i} has {len(s.sources)} sources; a passthrough slice takes "
                "exactly one (split it into one slice per source)"
            )
        a, b = s.sources[0].layer_range
        if a < 0 or b < 0:
            raise UplabError(f"{origin}: slice {i} layer_range [{a}, {b}] is negative")
        if b < a:
            raise UplabError(
                f"{origin}: slice {i} layer_range [{a}, {b}] is reversed; ranges are half-open "
                f"[start, end) with start <= end, e.g. [{b}, {a}]"
            )
    models = {str(s.sources[0].model) for s in config.slices or []}
    if len(models) > 1:
        raise UplabError(
            f"{origin}: slices name {len(models)} different models ({', '.join(sorted(models))}); "
            "uplab plans upscale one model"
        )


def load_plan(path: str | Path) -> Plan:
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise UplabError(f"{path}: no such config file") from None
    except (IsADirectoryError, PermissionError, UnicodeDecodeError) as e:
        raise UplabError(f"{path}: cannot read config ({e.__class__.__name__})") from None
    return parse_plan(text, origin=str(path))


def check_depth(plan: Plan, num_layers: int) -> None:
    """Ranges past the source's depth are errors: mergekit would fail mid-merge on them."""
    for i, (a, b) in enumerate(plan.ranges()):
        if b > num_layers:
            raise UplabError(
                f"{plan.origin}: slice {i} layer_range [{a}, {b}] reaches past the source's "
                f"{num_layers} layers (valid ends are <= {num_layers})"
            )
