"""What a training run keeps besides its weights: the loss / lr / grad-norm log, the tracked
tensors' norms, held-out scores at every snapshot, and the seconds snapshots took (kept out of
the throughput)."""

from __future__ import annotations

import math
import time
from typing import Callable

import torch

from harness.errors import UplabError
from harness.train import dist, modes, reuse
from harness.train.evaluate import evaluate

Sink = Callable[[int, dict[str, torch.Tensor]], None]


def scored_at(spec, step: int, total: int) -> bool:
    """Whether the snapshot at `step` scores the held-out sets (RunSpec.scores)."""
    return spec.scores == "snapshots" or step in (0, total)


class Recorder:
    """The log of one run. Losses and grad norms stay on the device until `flush`: on a GPU,
    reading them every step would stall the launch queue."""

    def __init__(self, accel, model, track: list[str], eval_sets: dict, *, pad_id: int,
                 eval_batch: int, per_epoch: int, sink: Sink, bar):
        self.accel, self.model, self.track = accel, model, track
        self.eval_sets, self.pad_id, self.eval_batch = eval_sets, pad_id, eval_batch
        self.per_epoch, self.sink, self.bar = per_epoch, sink, bar
        self.log: dict[str, list] = {"loss": [], "lr": [], "grad_norm": []}
        self.tracked = {n: {"weight_norm": [], "grad_norm": []} for n in track}
        self.evals: list[dict] = []
        self.spent = 0.0  # seconds in snapshots (evals, saving)
        self._pending: list[tuple[torch.Tensor, torch.Tensor, float]] = []

    def weights(self) -> None:
        """Norms of the tracked tensors' live effective weights."""
        with torch.no_grad():
            for n, w in modes.tracked_weights(self.accel.unwrap_model(self.model), self.track).items():
                self.tracked[n]["weight_norm"].append(float(w.float().norm()))

    def grads(self) -> None:
        for n, g in modes.tracked_grads(self.accel.unwrap_model(self.model), self.track).items():
            self.tracked[n]["grad_norm"].append(g)

    def step(self, loss: torch.Tensor, grad_norm: torch.Tensor, lr: float, *, flush: bool) -> None:
        self._pending.append((loss, grad_norm, lr))
        if flush:
            self.flush()

    def flush(self) -> None:
        """Read the pending steps' numbers off the device; a non-finite loss ends the run."""
        for loss_t, gn_t, lr_ in self._pending:
            loss_f = float(loss_t)
            if not math.isfinite(loss_f):
                raise UplabError(f"training loss became {loss_f} at step {len(self.log['loss']) + 1} "
                                 f"(lr {lr_:g}); lower lr or raise grad_clip")
            self.log["loss"].append(loss_f)
            self.log["lr"].append(lr_)
            self.log["grad_norm"].append(float(gn_t))
        self._pending.clear()
        if self.log["loss"]:
            self.bar.set_postfix(loss=f"{self.log['loss'][-1]:.3f}", refresh=False)

    def snapshot(self, step: int, scored: bool = True) -> None:
        """Held-out scores on every eval set (unless not `scored`), then the effective fp32 weights
        to the sink."""
        t = time.perf_counter()
        accel = self.accel

        def score(ts) -> dict:
            return evaluate(self.model, ts, self.pad_id, device=accel.device, autocast=accel.autocast,
                            batch_size=self.eval_batch)

        # Only a single CPU process: under FSDP every rank must run each forward, and on a GPU
        # scoring is cheap while hashing would copy every weight to the host at each snapshot.
        if not scored:
            scores = None
        elif accel.num_processes == 1 and accel.device.type == "cpu":
            model = accel.unwrap_model(self.model)
            fn = reuse.function_key([model.state_dict()], type(model).__name__, model.config.to_json_string(),
                                    f"one|{accel.device}|{accel.mixed_precision}|{self.eval_batch}")
            scores = {k: reuse.scored(f"{fn}|{ts.digest}", lambda ts=ts: score(ts))
                      for k, ts in self.eval_sets.items()}
        else:
            scores = {k: score(ts) for k, ts in self.eval_sets.items()}
        if scores is not None:
            self.evals.append({"step": step, "epoch": step / self.per_epoch, "sets": scores})
        state = dist.snapshot_state(accel, self.model)  # a collective under FSDP; None off the main rank
        if state is not None:
            self.sink(step, state)
        self.spent += time.perf_counter() - t
