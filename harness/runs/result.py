"""A finished run in the cache, read back: its spec, folder, metrics and snapshots."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import torch

from harness.checkpoint import Checkpoint
from harness.checkpoint.model import model_from_state
from harness.errors import UplabError
from harness.runs.spec import RunSpec


def snapshot_name(step: int) -> str:
    return f"step-{step:06d}.safetensors"


@dataclass(frozen=True)
class RunResult:
    """A finished run in the cache: its spec, folder, metrics and snapshots."""

    spec: RunSpec
    path: Path

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
        return list(self.metrics["snapshots"])

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

    def state_dict(self, step: int | None = None) -> dict[str, torch.Tensor]:
        with Checkpoint(self.snapshot_path(step)) as snapshot:
            return snapshot.state_dict()

    def scores(self, step: int | None = None) -> dict[str, dict]:
        """Held-out scores per eval set at a snapshot step (default: the last)."""
        step = self.final_step if step is None else step
        return next(e["sets"] for e in self.metrics["evals"] if e["step"] == step)

    def model(self, step: int | None = None):
        """An fp32 CPU HF model with the snapshot's weights (a fresh object every call)."""
        from transformers import AutoConfig

        config = AutoConfig.from_pretrained(str(self.path))
        return model_from_state(config, self.state_dict(step), f"snapshot {self.snapshot_path(step)}")
