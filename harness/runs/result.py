"""A finished run in the cache, read back: its spec, folder, metrics and snapshots."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path

import torch

from harness.checkpoint import Checkpoint
from harness.checkpoint.model import model_from_state
from harness.errors import UplabError
from harness.runs.spec import RunSpec


# The finished-run marker (harness.runs.cache) and its field naming snapshot steps dropped after
# commit (harness.runs.cache.thin).
MARKER, THINNED = "COMPLETE", "thinned"


def snapshot_name(step: int) -> str:
    return f"step-{step:06d}.safetensors"


@dataclass(frozen=True)
class RunResult:
    """A finished run in the cache: its spec, folder, metrics and snapshots.

    `only`: the snapshot steps this reader may see (`read_as`), None for all of them."""

    spec: RunSpec
    path: Path
    only: tuple[int, ...] | None = None

    @cached_property
    def metrics(self) -> dict:
        return json.loads((self.path / "metrics.json").read_text())

    @cached_property
    def info(self) -> dict:
        """spec.json: resolved spec, seed, versions, device."""
        return json.loads((self.path / "spec.json").read_text())

    @property
    def key(self) -> str:
        """The entry's key: the computation (harness.runs.engine), not only the spec."""
        return self.path.name

    @property
    def steps(self) -> list[int]:
        return [s for s in self.metrics["snapshots"] if self.only is None or s in self.only]

    def read_as(self, request: RunSpec) -> "RunResult":
        """This run as `request` would have recorded it: `request` trains the same bits and keeps
        a subset of the snapshots (harness.claims.lab shares a run between a default fine-tune and
        its densely recorded twin), so a measure reading the view sees exactly the request's
        snapshots and scores, never the extra ones that would change what it computes."""
        from harness.train.loop import plan_steps

        per_epoch = self.metrics["steps_per_epoch"]
        _, _, keep = plan_steps(request, per_epoch * request.data.batch_size)
        missing = sorted(set(keep) - set(self.metrics["snapshots"]))
        if missing:
            raise UplabError(f"run {self.key[:12]} cannot stand in for {request.key[:12]}: "
                             f"it has no snapshot at steps {missing}")
        view = replace(self, spec=request, only=tuple(keep))
        view.__dict__["metrics"] = self.metrics  # parsed once (a long run's per-step norms are large)
        return view

    def epoch_end(self, epoch: int) -> int:
        """The step at the end of `epoch` (1-based), a snapshot when the run kept epoch ends."""
        return epoch * self.metrics["steps_per_epoch"]

    @property
    def final_step(self) -> int:
        return self.steps[-1]

    def snapshot_path(self, step: int | None = None) -> Path:
        step = self.final_step if step is None else step
        if step not in self.steps:
            raise UplabError(f"run {self.spec.key[:12]} has no snapshot at step {step}; it has {self.steps}")
        return self.path / snapshot_name(step)

    def thinned(self) -> list[int]:
        """Snapshot steps this entry dropped once what is read from them was stored beside it."""
        try:
            return list(json.loads((self.path / MARKER).read_text()).get(THINNED, []))
        except (OSError, ValueError, AttributeError):
            return []

    def require_snapshot(self, step: int | None = None) -> Path:
        """snapshot_path, for reading its weights: a dropped snapshot is one UplabError."""
        step = self.final_step if step is None else step
        path = self.snapshot_path(step)
        if not path.is_file() and step in self.thinned():
            raise UplabError(f"run {self.key[:12]} no longer keeps its snapshot at step {step}: it was "
                             f"thinned once the values read from it were stored (harness.claims.trajectory); "
                             f"a measure asked for one its derive step does not compute")
        return path

    def state_dict(self, step: int | None = None) -> dict[str, torch.Tensor]:
        with Checkpoint(self.require_snapshot(step)) as snapshot:
            return snapshot.state_dict()

    def scores(self, step: int | None = None) -> dict[str, dict]:
        """Held-out scores per eval set at a snapshot step (default: the last)."""
        step = self.final_step if step is None else step
        if step not in self.steps:
            raise UplabError(f"run {self.spec.key[:12]} has no scores at step {step}; it has {self.steps}")
        found = next((e["sets"] for e in self.metrics["evals"] if e["step"] == step), None)
        if found is None:
            raise UplabError(f"run {self.key[:12]} scored its held-out sets at step 0 and its end only "
                             f"(scores: {self.spec.scores}), not at step {step}")
        return found

    def model(self, step: int | None = None):
        """An fp32 CPU HF model with the snapshot's weights (a fresh object every call)."""
        from transformers import AutoConfig

        config = AutoConfig.from_pretrained(str(self.path))
        return model_from_state(config, self.state_dict(step), f"snapshot {self.snapshot_path(step)}")
