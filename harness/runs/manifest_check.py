"""A manifest's checkpoints checked against what it says they are, at startup, on a sample.

The depth alone does not tell an interleaved plan from a contiguous one, or [6, 12) from [4, 10):
a wrong plan silently reports verdicts under the wrong layer roles. So the upscaled checkpoint is
read against the plan: every copy of a source layer equals that layer's first (orig) copy times
the plan's scale (zeroed modules are zero), and orig copies equal the base's layer where the base
is a readable checkpoint. Snapshots must be the same model (model_type, width) and must have
moved from the upscaled model (identical ones would divide by zero in every relative change).
A control pair must be one ordinary fine-tune: its tuned model the base's kind, width and depth,
and moved from it.

Only the first SAMPLE elements of each tensor are compared: enough to tell two trained layers
apart, and constant time per tensor, so a 39B manifest is checked in seconds, not by reading 80 GB.
"""

from __future__ import annotations

from pathlib import Path

import torch

from harness import arch as arch_facts
from harness.checkpoint import Checkpoint, config_facts, read_config
from harness.errors import UplabError

SAMPLE = 4096  # elements compared per tensor
RTOL = 1e-2  # scaled copies: the plan's scale applied in the stored dtype (bf16 rounds at ~4e-3)


def _first(ckpt: Checkpoint, name: str) -> torch.Tensor:
    return next(ckpt.chunks(name, SAMPLE)).float()


def _open(path: Path, what: str, source: Path) -> Checkpoint:
    try:
        return Checkpoint(path)
    except UplabError as e:
        raise UplabError(f"manifest {source}: {what}: {e}") from None


def check_plan(run) -> None:
    """The upscaled checkpoint holds the copies `run.plan` makes of the base, or one UplabError."""
    facts = arch_facts.get(run.model_type)
    lmap = run.layer_map
    up = _open(run.upscaled, "upscaled", run.source)
    base = None
    try:
        base = Checkpoint(run.base)
    except UplabError:  # a base folder that is not a safetensors checkpoint: copies are checked among themselves
        pass
    first_copy = {e.source: e.index for e in lmap.layers if e.role == "orig"}
    inners = sorted({split[1] for name in up.names() if (split := facts.split(name)) and split[0] == 0})

    source = run.source

    def fail(entry, inner: str, what: str):
        raise UplabError(
            f"manifest {source}: upscaled layer {entry.index} ({inner}) is not {what}, as the upscale "
            "config says; it is not the config that built `upscaled` (another strategy or range?): "
            "give the config that built it")

    for e in lmap.layers:
        for inner in inners:
            name = facts.layer_tensor(e.index, inner)
            if name not in up.tensors:
                raise UplabError(f"manifest {source}: upscaled has no tensor {name}, which the upscale "
                                 "config makes; give the config that built `upscaled`")
            got = _first(up, name)
            scale = e.scales.get(facts.module_of(inner) or "", 1.0)
            if e.role == "orig":
                if base is not None:
                    ref_name = facts.layer_tensor(e.source, inner)
                    if ref_name in base.tensors and not torch.equal(got, _first(base, ref_name)):
                        fail(e, inner, f"a copy of base layer {e.source}")
                continue
            if scale == 0.0:
                if torch.count_nonzero(got):
                    fail(e, inner, "zero (the config zeroes it)")
                continue
            ref = _first(up, facts.layer_tensor(first_copy[e.source], inner)) * scale
            if not torch.allclose(got, ref, rtol=RTOL, atol=1e-6):
                fail(e, inner, f"a copy of source layer {e.source} (layer {first_copy[e.source]})")


def check_snapshots(run) -> None:
    """Every snapshot is the upscaled model's kind and width; the last one moved from it."""
    want = read_config(run.upscaled if run.upscaled.is_dir() else run.upscaled.parent)
    for i, (_, _, path) in enumerate(run.snapshots):
        have = read_config(path if path.is_dir() else path.parent)
        for key in ("model_type", "hidden_size"):
            if have.get(key) != want.get(key):
                raise UplabError(f"manifest {run.source}: snapshot {i + 1} has {key} {have.get(key)!r} but "
                                 f"the upscaled model has {want.get(key)!r}; give snapshots of this fine-tune")
    up = _open(run.upscaled, "upscaled", run.source)
    last = _open(run.snapshots[-1][2], f"snapshot {len(run.snapshots)}", run.source)
    for name in up.names():
        if name in last.tensors and not torch.equal(_first(up, name), _first(last, name)):
            return
    raise UplabError(f"manifest {run.source}: the last snapshot equals the upscaled model (no weight has "
                     "moved): the snapshots are not of a fine-tune; give the fine-tune's checkpoints")


def check_controls(run) -> None:
    """Every control pair is an ordinary fine-tune: same kind, width and depth, and it moved."""
    for i, c in enumerate(run.controls):
        what = f"manifest {run.source}: control {i + 1} ({c.name!r})"
        have = read_config(c.tuned if c.tuned.is_dir() else c.tuned.parent)
        want = read_config(c.base if c.base.is_dir() else c.base.parent)
        facts = {"model_type": (have.get("model_type"), want.get("model_type")),
                 "hidden_size": (have.get("hidden_size"), want.get("hidden_size")),
                 "depth": (config_facts(have, c.tuned)[1], c.depth)}
        for key, (mine, theirs) in facts.items():
            if mine != theirs:
                raise UplabError(f"{what}: tuned has {key} {mine!r} but its base has {theirs!r}; a "
                                 "control is one ordinary fine-tune of its base (not an upscale): "
                                 "give the pair's two checkpoints")
        base = _open(c.base, f"control {i + 1} base", run.source)
        tuned = _open(c.tuned, f"control {i + 1} tuned", run.source)
        if not any(name in tuned.tensors and not torch.equal(_first(base, name), _first(tuned, name))
                   for name in base.names()):
            raise UplabError(f"{what}: tuned equals its base (no weight has moved); give the "
                             "fine-tuned checkpoint")
