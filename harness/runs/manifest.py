"""Checkpoints trained elsewhere (like the seed's 39B): one fine-tune of one upscale, as a manifest.

    # uplab checkpoint manifest (YAML); relative paths are relative to this file
    base: /models/Mistral-Small-Instruct-2409   # the source model (HF folder)
    upscale: seed-39b.yml                        # the mergekit config that built `upscaled`
    upscaled: /models/ms-39b                     # the upscale as built, before fine-tuning
    snapshots:                                   # the fine-tune's checkpoints, in training order
      - {path: /ckpt/epoch-1, epoch: 1}
      - {path: /ckpt/epoch-2, epoch: 2, step: 1250}
    controls:                                    # optional: ordinary (not upscaled) fine-tunes
      - {name: Small x Cydonia, base: /models/Mistral-Small-Instruct-2409, tuned: /models/Cydonia-22B}

A snapshot is an HF folder (sharded or not) or one .safetensors file. `step` is optional (the
snapshot's position, 1, 2, ..., when no snapshot gives one); steps and the epochs given strictly
increase. The upscaled model is step 0. A control pair is a (base, fine-tuned) pair of HF folders
of one ordinary fine-tune, any architecture uplab reads, named for the report: what the card
compared its upscale's heatmaps with. Besides config.json and safetensors headers, a sample of
each tensor is read to check the plan against the upscaled weights and that the snapshots moved
(harness.runs.manifest_check); weight deltas stream the files later.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import yaml
from pydantic import Field, ValidationError

from harness.checkpoint import config_facts, read_config
from harness.errors import UplabError, yaml_problem
from harness.layermap import LayerMap
from harness.plan import Plan
from harness.schema import Frozen, invalid


class SnapshotEntry(Frozen):
    path: str
    epoch: int | None = Field(None, ge=1)
    step: int | None = Field(None, ge=1)


class ControlEntry(Frozen):
    name: str = Field(min_length=1, max_length=80)
    base: str
    tuned: str


class ManifestFile(Frozen):
    base: str
    upscale: str
    upscaled: str
    snapshots: list[SnapshotEntry] = Field(min_length=1)
    controls: list[ControlEntry] = []


@dataclass(frozen=True)
class ControlPair:
    """An ordinary fine-tune named in a manifest, read like a run with two snapshots."""

    name: str
    base: Path
    tuned: Path
    model_type: str
    depth: int

    @property
    def key(self) -> str:
        return f"control:{self.name}"

    def snapshot_path(self, step: int | None = None) -> Path:
        return self.base if step == 0 else self.tuned


def _config(path: Path) -> dict:
    """config.json of an HF folder, or of the folder holding a .safetensors file."""
    return read_config(path if path.is_dir() else path.parent)


def _depth(path: Path) -> int:
    folder = path if path.is_dir() else path.parent
    return config_facts(_config(path), folder / "config.json")[1]


@dataclass(frozen=True)
class ManifestRun:
    """The one fine-tune a manifest describes, read like a cached run: steps and snapshot paths."""

    source: Path  # the manifest file
    base: Path
    plan: Plan  # the upscale config that built `upscaled`
    upscaled: Path
    snapshots: tuple[tuple[int, int | None, Path], ...]  # (step, epoch, path), in order
    model_type: str
    base_depth: int
    controls: tuple[ControlPair, ...] = ()

    @property
    def key(self) -> str:
        """Identity in the report: the manifest's bytes (the checkpoints are not hashed)."""
        return "manifest:" + hashlib.sha256(self.source.read_bytes()).hexdigest()[:16]

    @property
    def steps(self) -> list[int]:
        return [0] + [s for s, _, _ in self.snapshots]

    @property
    def final_step(self) -> int:
        return self.steps[-1]

    def snapshot_path(self, step: int | None = None) -> Path:
        if step is None or step == self.final_step:
            return self.snapshots[-1][2]
        if step == 0:
            return self.upscaled
        for s, _, path in self.snapshots:
            if s == step:
                return path
        raise UplabError(f"manifest {self.source} has no snapshot at step {step}; it has {self.steps}")

    def epoch_end(self, epoch: int) -> int:
        """The step of the snapshot the manifest marks as the end of `epoch`."""
        for s, e, _ in self.snapshots:
            if e == epoch:
                return s
        raise UplabError(f"manifest {self.source} marks no snapshot as epoch {epoch}; add "
                         f"`epoch: {epoch}` to that snapshot's entry")

    @cached_property
    def layer_map(self) -> LayerMap:
        return self.plan.layer_map(self.base_depth, self.model_type)


MAX_BYTES = 1 << 20  # a manifest lists a handful of paths; a larger file is not one (and is not read)


def _resolved(path: Path, what: str) -> Path:
    try:
        return path.expanduser().resolve()
    except (OSError, RuntimeError) as e:  # a symlink loop: RuntimeError before Python 3.13
        raise UplabError(f"{what} {path}: cannot resolve the path ({getattr(e, 'strerror', None) or e}); "
                         "is it a symlink loop?") from None


def load_manifest(path: str | Path) -> ManifestRun:
    """Parse and check a manifest; any problem is one UplabError line naming the entry and the fix."""
    source = _resolved(Path(path), "manifest")
    try:
        with open(source, "rb") as f:
            data = f.read(MAX_BYTES + 1)
        if len(data) > MAX_BYTES:
            raise UplabError(f"manifest {source} is over {MAX_BYTES // 1024} KiB; a manifest is a short YAML "
                             "file of paths (is this the right file?)")
        raw = yaml.safe_load(data.decode("utf-8"))
    except OSError as e:
        raise UplabError(f"cannot read manifest {source} ({e.strerror})") from None
    except UnicodeDecodeError as e:
        raise UplabError(f"manifest {source}: not UTF-8 text (byte {e.start}); save it as UTF-8 YAML") from None
    except yaml.YAMLError as e:
        raise UplabError(f"manifest {source}: not valid YAML{yaml_problem(e)}") from None
    try:
        m = ManifestFile.model_validate(raw if raw is not None else {})
    except ValidationError as e:
        raise invalid(e, f"manifest {source}: ", where="manifest",
                      hint=" (keys: base, upscale, upscaled, snapshots: [{path, epoch?, step?}], "
                           "controls?: [{name, base, tuned}])") from None

    def existing(text: str, what: str) -> Path:
        p = _resolved(source.parent / Path(text).expanduser(), f"manifest {source}: {what}")
        if not p.exists():
            raise UplabError(f"manifest {source}: {what} {text!r} does not exist")
        return p

    base, upscaled = existing(m.base, "base"), existing(m.upscaled, "upscaled")
    plan_path = existing(m.upscale, "upscale config")
    steps = [s.step for s in m.snapshots]
    if any(s is not None for s in steps) and None in steps:
        raise UplabError(f"manifest {source}: give `step` for every snapshot or for none")
    steps = steps if steps[0] is not None else list(range(1, len(m.snapshots) + 1))
    if steps != sorted(set(steps)):
        raise UplabError(f"manifest {source}: snapshot steps {steps} must increase")
    epochs = [s.epoch for s in m.snapshots if s.epoch is not None]
    if epochs != sorted(set(epochs)):  # snapshots are in training order: epochs 2 then 1 is a typo
        raise UplabError(f"manifest {source}: snapshot epochs {epochs} must strictly increase (snapshots "
                         "are listed in training order, one epoch end each)")
    snaps = tuple((step, s.epoch, existing(s.path, f"snapshot {i + 1}"))
                  for i, (step, s) in enumerate(zip(steps, m.snapshots)))
    from harness.plan import load_plan

    facts, depth = config_facts(_config(base), base / "config.json")
    plan = load_plan(plan_path)  # a folder, bad YAML or a bad range: one line naming it
    controls = tuple(_control(c, i, existing) for i, c in enumerate(m.controls))
    names = [c.name for c in controls]
    if len(set(names)) != len(names):
        raise UplabError(f"manifest {source}: control names {names} must be unique (the report "
                         "names each control by it)")
    run = ManifestRun(source=source, base=base, plan=plan, upscaled=upscaled,
                      snapshots=snaps, model_type=facts.name, base_depth=depth, controls=controls)
    want = run.layer_map.num_layers
    for label, p in [("upscaled", upscaled)] + [(f"snapshot {i + 1}", s[2]) for i, s in enumerate(snaps)]:
        if _depth(p) != want:
            raise UplabError(f"manifest {source}: {label} has {_depth(p)} layers but the upscale config "
                             f"on the {run.base_depth}-layer base gives {want}; give matching checkpoints")
    from harness.runs.manifest_check import check_controls, check_plan, check_snapshots

    check_snapshots(run)
    check_plan(run)
    check_controls(run)
    return run


def _control(entry: ControlEntry, i: int, existing) -> ControlPair:
    what = f"control {i + 1} ({entry.name!r})"
    base, tuned = existing(entry.base, f"{what} base"), existing(entry.tuned, f"{what} tuned")
    facts, depth = config_facts(_config(base), base / "config.json")
    return ControlPair(name=entry.name, base=base, tuned=tuned, model_type=facts.name, depth=depth)
