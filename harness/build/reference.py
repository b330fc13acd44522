"""The reference builder: mergekit's own `run_merge`, run fully offline.

mergekit resolves model names through the Hugging Face hub when a path does not exist and
writes a model card that looks models up there; uplab points every source at an absolute local
path, turns the card off and sets HF_HUB_OFFLINE so nothing can reach the network.
"""

from __future__ import annotations

import logging
import os
from contextlib import contextmanager
from pathlib import Path
from unittest import mock

from harness.checkpoint import read_model, staged_output
from harness.errors import UplabError
from harness.layermap import LayerMap
from harness.plan import Plan, check_depth, parse_plan


@contextmanager
def _offline():
    keys = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    before = {k: os.environ.get(k) for k in keys}
    os.environ.update({k: "1" for k in keys})
    try:
        yield
    finally:
        for k, v in before.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def with_source(plan: Plan, src: str | Path) -> Plan:
    """The same plan with every slice's model replaced by the absolute path `src`."""
    import yaml

    raw = yaml.safe_load(plan.text)
    for s in raw["slices"]:
        for source in s["sources"]:
            source["model"] = str(Path(src).resolve())
    return parse_plan(yaml.safe_dump(raw, sort_keys=False), origin=plan.origin)


def mergekit_config(plan: Plan):
    """The plan as mergekit's own MergeConfiguration, parsed by mergekit from `plan.text` (a Plan
    holds uplab's mirror of the schema, so that planning never imports mergekit)."""
    import yaml
    from mergekit.config import MergeConfiguration

    return MergeConfiguration.model_validate(yaml.safe_load(plan.text))


def upscale_checkpoint(src: str | Path, plan: Plan, out: str | Path, *, force: bool = False,
                       max_shard_bytes: int = 5 * 10**9, progress: bool = True,
                       allow_nonfinite: bool = False) -> LayerMap:
    from mergekit.merge import MergeOptions, run_merge

    from harness.build.finite import scan_finite
    from harness.checkpoint import Checkpoint

    src = Path(src).resolve()
    config, facts, depth = read_model(src)
    check_depth(plan, depth)
    local = with_source(plan, src)
    lm = local.layer_map(depth, facts.name)
    with Checkpoint(src) as reader:  # mergekit would copy them silently; also checks the files
        if not allow_nonfinite:
            scan_finite(reader, reader.names(), str(src))
    options = MergeOptions(
        copy_tokenizer=(src / "tokenizer_config.json").is_file(), write_model_card=False, quiet=not progress,
        out_shard_size=max_shard_bytes, lazy_unpickle=False, allow_crimes=False,
    )
    with staged_output(out, force=force, protect=(src,)) as stage, _offline(), \
            _resized_layer_lists(lm, facts.per_layer_keys):
        logging.getLogger("mergekit").setLevel(logging.ERROR)
        try:
            run_merge(mergekit_config(local), str(stage), options=options)
        except Exception as e:  # mergekit raises bare RuntimeErrors; keep the message
            raise UplabError(f"mergekit failed: {e}") from e
    return lm


@contextmanager
def _resized_layer_lists(lm: LayerMap, per_layer_keys: tuple[str, ...]):
    """mergekit sets the new depth but leaves per-layer lists (Qwen2's layer_types) at the old
    length, which transformers 5 refuses to save; re-index them by the layer map as it builds."""
    import mergekit.merge

    original = mergekit.merge._model_out_config

    def fixed(*args, **kwargs):
        cfg = original(*args, **kwargs)
        for key in per_layer_keys:
            values = getattr(cfg, key, None)
            if values is not None and len(values) == lm.source_layers:
                # through __dict__: setattr would validate the list against the new depth
                # one attribute at a time
                cfg.__dict__[key] = [values[e.source] for e in lm.layers]
        return cfg

    with mock.patch.object(mergekit.merge, "_model_out_config", fixed):
        yield

