"""Execute one run into a folder: load the resolved base, apply the plan, train, write the artifacts.

The folder gets one safetensors file per snapshot (`step-000064.safetensors`, effective fp32
weights in HF naming, tied lm_head left out), `config.json` of the trained model, `metrics.json`
and `spec.json` (the resolved spec, its hash, seed, package versions, device, and the role of
every layer: orig/dup from the plan's layer map). Atomicity, and finishing a base that is itself
a run, are the cache's job (harness.runs.cache, which hands this module the base's RunResult);
this module only trains and writes. Launched over several processes (harness.launch), every rank
trains and only the main rank writes.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Callable

import torch

from harness import data as data_mod
from harness import tiny
from harness.checkpoint.write import save_tensors
from harness.errors import UplabError
from harness.plan import Plan, check_depth
from harness.runs.result import RunResult, snapshot_name
from harness.runs.spec import SCHEMA, LocalBase, RunSpec, Scratch
from harness.train import dist, train
from harness.versions import versions

Base = Scratch | LocalBase | RunResult  # a spec's base once the cache has finished a run base


TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model")


def tokenizer_for(base):
    """Bytes for tiny presets and tiny checkpoints; the checkpoint's own tokenizer otherwise."""
    root = base.root() if isinstance(base, RunSpec) else base
    if isinstance(root, Scratch):
        return data_mod.ByteTokenizer()
    p = Path(root.path).expanduser()
    if (p / "uplab_tiny.json").exists():
        return data_mod.ByteTokenizer()
    if not any((p / f).exists() for f in TOKENIZER_FILES):
        # a tiny model saved elsewhere (an upscale of one, say): the byte vocabulary gives it away
        cfg = json.loads((p / "config.json").read_text()) if (p / "config.json").is_file() else {}
        if cfg.get("vocab_size") == tiny.VOCAB_SIZE and cfg.get("bos_token_id") == tiny.BOS_ID:
            return data_mod.ByteTokenizer()
    return data_mod.load_tokenizer(p)


def load_checkpoint(path: str):
    from transformers import AutoModelForCausalLM

    from harness.checkpoint import Checkpoint, check_layers, read_model

    p = Path(path).expanduser()
    if not (p / "config.json").is_file():
        raise UplabError(f"base checkpoint {str(p)!r} has no config.json; pass a local HF model folder")
    # The depth is read and checked against the weights before transformers could fill a
    # missing `num_hidden_layers` with its default and train layers it initialised at random.
    _, facts, depth = read_model(p)
    with Checkpoint(p) as reader:
        check_layers(reader.names(), facts, depth, p)
    try:
        return AutoModelForCausalLM.from_pretrained(str(p), local_files_only=True, dtype=torch.float32)
    except (OSError, ValueError) as e:
        raise UplabError(f"cannot load base checkpoint {str(p)!r}: {str(e).splitlines()[0]}") from None


def load_base(base: Base):
    """The base as an fp32 HF model: a fresh preset, a local checkpoint, or a finished run's last snapshot."""
    if isinstance(base, Scratch):
        return tiny.build(tiny.preset(base.preset), base.seed)
    if isinstance(base, LocalBase):
        return load_checkpoint(base.path)
    return base.model()


# Upscales already built on disk, by run key: a launch's parent builds a spec's plan once
# (harness.launch.command.build_on_disk) and every rank loads the result instead of loading the
# base and applying the plan in memory (one fp32 model per rank instead of a base beside it).
PREBUILT: dict[str, Path] = {}


def apply_plan(model, plan: Plan):
    """The one call into the upscale builder: (a new upscaled model, the plan's layer map)."""
    from harness.build.native import upscale_model

    depth = model.config.num_hidden_layers
    check_depth(plan, depth)
    return upscale_model(model, plan), plan.layer_map(depth, model.config.model_type)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_snapshot(out: Path, step: int, state: dict[str, torch.Tensor]) -> Path:
    """One snapshot file. Its bytes depend on the weights and the step alone (one metadata key,
    no run key): equal weights give equal files, which the cache stores once (harness.runs.cache)."""
    f = out / snapshot_name(step)
    save_tensors(state, f, metadata={"uplab": json.dumps({"step": step})})
    _fsync(f)
    return f


def write_json(path: Path, obj) -> None:
    path.write_text(json.dumps(obj, indent=1, sort_keys=True))
    _fsync(path)


def execute(spec: RunSpec, base: Base, out: Path | None, *, progress: bool = False, callbacks=(),
            on_write: Callable[[Path], None] | None = None, record: dict | None = None) -> dict:
    """Train `spec` from `base` (spec.base, or its finished run) and write its artifacts into the
    existing folder `out`; returns the metrics.

    On a launched run's other ranks `out` is None: they train, the main rank writes.
    """
    started = time.time()
    built = PREBUILT.get(spec.key) if spec.plan is not None and isinstance(base, LocalBase) else None
    if built is not None:  # the plan applied on disk by the launch's parent
        from harness.checkpoint import read_model

        _, facts, source_layers = read_model(Path(base.path).expanduser())
        model = load_checkpoint(str(built))
        roles = spec.plan.layer_map(source_layers, model.config.model_type).roles()
    else:
        model = load_base(base)
        source_layers = model.config.num_hidden_layers
        roles = ["orig"] * source_layers
        if spec.plan is not None:
            model, layer_map = apply_plan(model, spec.plan)
            roles = layer_map.roles()
    tok = tokenizer_for(spec.base)
    train_set, eval_sets = data_mod.load(spec.data, tok)

    def sink(step: int, state: dict[str, torch.Tensor]) -> None:
        f = write_snapshot(out, step, state)
        if on_write is not None:  # test hook: lets a test kill the process mid-write
            on_write(f)

    metrics = train(model, spec, train_set, eval_sets, pad_id=tok.pad_id, sink=sink,
                    progress=progress, callbacks=callbacks)  # sink: called on the main rank only
    if not dist.is_main():
        return metrics
    write_record(out, spec, model, metrics, source_layers=source_layers, roles=roles,
                 tokenizer=tok.name, started=started, **(record or {}))
    return metrics


def write_record(out: Path, spec: RunSpec, model, metrics: dict, *, source_layers: int, roles,
                 tokenizer: str, started: float, **extra) -> None:
    """A finished run's config, metrics and resolved spec with its provenance, beside its snapshots."""
    model.config.to_json_file(str(out / "config.json"))
    write_json(out / "metrics.json", metrics)
    write_json(out / "spec.json", {
        "schema": SCHEMA, "key": spec.key, "seed": spec.seed, "spec": spec.model_dump(mode="json"),
        "base_key": spec.base.key if isinstance(spec.base, RunSpec) else None,
        "source_layers": source_layers, "layers": model.config.num_hidden_layers, "roles": roles,
        "tokenizer": tokenizer, "versions": versions(), "device": metrics["device"],
        "mixed_precision": metrics["mixed_precision"], "torch_threads": torch.get_num_threads(),
        "argv": sys.argv[:3], "started": started, "finished": time.time(), **extra,
    })
