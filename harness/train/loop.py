"""The one training loop, for every scale: setup → train (snapshots) → metrics.

Runs on accelerate: fp32 on CPU, bf16 autocast on GPU (fp32 master weights), and whatever
`accelerate launch` configures beyond one device. Step k is the model after k optimizer
updates; step 0 is the model as given. The caller owns where snapshots go (`sink`).

Under `accelerate launch` (harness.launch) every rank runs this loop: each takes its rows of
every batch, the loss is normalised over the whole batch, and only the main rank's sink is
called. Under FSDP the model is sharded before the optimizer is built over its parameters, and
a snapshot gathers the full state dict on every rank (harness.train.dist).
"""

from __future__ import annotations

import fnmatch
import math
import os
import time
from dataclasses import dataclass
from typing import Callable

import torch
from accelerate.utils import DistributedType
from tqdm.auto import tqdm

from harness import flops
from harness.data import TokenSet, collate, epoch_batches, token_count
from harness.errors import UplabError
from harness.train import dist, modes
from harness.train.record import Recorder, Sink, scored_at
from harness.train.optimizer import make_optimizer
from harness.train.schedule import lr_at


@dataclass
class StepInfo:
    """What a callback sees after each optimizer step."""

    step: int
    epoch: int
    loss: float
    lr: float
    grad_norm: float
    model: torch.nn.Module


def set_seed(seed: int) -> None:
    """The one seed: python, numpy and torch (CPU and CUDA) generators, via accelerate; on a GPU
    also CUDA's deterministic settings (`deterministic`)."""
    from accelerate.utils import set_seed as _set

    _set(seed)
    deterministic()


CUBLAS_WORKSPACE = ":4096:8"  # cuBLAS's deterministic workspace setting (CUDA docs, "Results reproducibility")


def deterministic() -> None:
    """On a GPU, the same bits for the same code and seed wherever torch allows, so that a
    claim's verdict does not flip between two nights of one commit: cuBLAS with a fixed workspace
    (CUBLAS_WORKSPACE_CONFIG, read when a cuBLAS handle is created; fixtures/gpus.py sets it
    before CUDA starts, this covers other callers), and torch's deterministic algorithms,
    warn_only: an op with no deterministic CUDA kernel (e.g. the embedding's backward) warns
    instead of failing the run, and stays a source of run-to-run noise. The CPU is left as it is
    (its kernels are deterministic already)."""
    if not torch.cuda.is_available():
        return
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE)
    if not torch.are_deterministic_algorithms_enabled():
        torch.use_deterministic_algorithms(True, warn_only=True)


def _accelerator(precision: str):
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState
    from accelerate.utils import InitProcessGroupKwargs

    cuda = torch.cuda.is_available()
    mixed = {"auto": "bf16" if cuda else "no", "fp32": "no", "bf16": "bf16"}[precision]
    if mixed == "bf16" and not cuda:
        raise UplabError("precision 'bf16' needs a CUDA device; use 'auto' or 'fp32' on CPU")
    # accelerate keeps one process-wide state and refuses a second precision: runs of both kinds
    # in one process (an fp32 control beside bf16 runs) reset it (the process group is kept).
    if AcceleratorState._shared_state.get("_mixed_precision", mixed) != mixed:
        AcceleratorState._reset_state()
    # Under an FSDP launch, uplab's mixed-precision policy (fp32 buffers and reductions), not the
    # one accelerate derives from bf16 (harness.train.dist.mixed_precision).
    fsdp = os.environ.get("ACCELERATE_USE_FSDP", "false").lower() == "true"
    plugin = dist.fsdp_plugin() if fsdp and mixed == "bf16" else None
    # The process group's timeout is uplab's (harness.train.dist.timeout), not NCCL's 10 min.
    return Accelerator(cpu=not cuda, mixed_precision=mixed, fsdp_plugin=plugin,
                       kwargs_handlers=[InitProcessGroupKwargs(timeout=dist.timeout())])


def plan_steps(spec, n_train: int) -> tuple[int, int, list[int]]:
    """(steps per epoch, total steps, sorted snapshot steps) of a run over n_train examples."""
    per_epoch = n_train // spec.data.batch_size
    total = spec.steps if spec.steps is not None else spec.epochs * per_epoch
    snaps = set(spec.snapshots) | {total}
    if spec.snapshot_epochs:
        snaps |= {k * per_epoch for k in range(1, total // per_epoch + 1)}
    late = sorted(s for s in snaps if s > total)
    if late:
        raise UplabError(f"snapshot steps {late} come after the run's last step ({total}); "
                         "lower them or train longer")
    return per_epoch, total, sorted(snaps)


def _tracked_names(model, patterns) -> list[str]:
    names = modes.weight_names(model)
    hits = [n for n in names if any(fnmatch.fnmatchcase(n, p) for p in patterns)]
    if patterns and not hits:
        raise UplabError(f"track patterns {list(patterns)} match no tensor (e.g. {names[3]!r}); "
                         "use fnmatch patterns like '*.o_proj.weight'")
    return hits


def train(model, spec, train_set: TokenSet, eval_sets: dict[str, TokenSet], *, pad_id: int,
          sink: Sink, progress: bool = True, callbacks: tuple[Callable[[StepInfo], None], ...] = ()
          ) -> dict:
    """Train `model` as `spec` says; snapshots go to `sink(step, state_dict)`; returns metrics."""
    # No KV cache while training and scoring: nothing reads it, it would hold every layer's keys
    # and values until the step ends, and under FSDP's activation checkpointing each recomputed
    # layer would append to it again. The caller's config is left as it was.
    config = model.config
    use_cache, config.use_cache = config.use_cache, False
    try:
        return _train(model, spec, train_set, eval_sets, pad_id=pad_id, sink=sink, progress=progress,
                      callbacks=callbacks)
    finally:
        config.use_cache = use_cache


def _train(model, spec, train_set, eval_sets, *, pad_id, sink, progress, callbacks) -> dict:
    # One seed for everything stochastic here: LoRA's A init, and nothing else draws from torch.
    set_seed(spec.seed)
    accel = _accelerator(spec.precision)
    per_epoch, total, snaps = plan_steps(spec, len(train_set))
    if accel.distributed_type == DistributedType.FSDP and spec.track:
        raise UplabError("track needs whole tensors at every step, which FSDP shards; "
                         "drop track or run on one GPU")
    run = _prepare(model, spec, accel)
    # Listing names would gather every tensor under FSDP: only when asked.
    track = _tracked_names(accel.unwrap_model(run.model), spec.track) if spec.track else []
    # Held-out batches: large on CPU (fewer passes), but no more than 8k tokens once rows are
    # long (a batch's logits are rows x length x vocab floats: 64 rows of 1024 tokens over a
    # 49k vocabulary are 13 GB, twice that with their log-softmax); on a GPU the training batch.
    eval_batch = ((256 if spec.data.max_len <= 128 else max(1, 8192 // spec.data.max_len))
                  if accel.device.type == "cpu" else spec.data.batch_size)
    # On a GPU, reading the loss every step would stall the launch queue: read it in batches.
    sync_every = 1 if accel.device.type == "cpu" or callbacks or track else 50
    bar = tqdm(total=total, desc="train", unit="step", disable=not progress, leave=False)
    rec = Recorder(accel, run.model, track, eval_sets, pad_id=pad_id, eval_batch=eval_batch,
                   per_epoch=per_epoch, sink=sink, bar=bar)
    step, tokens, t0 = 0, 0, time.perf_counter()
    warm = (t0, 0, 0.0)  # (time, tokens, snapshot seconds) where the steady state starts
    rec.weights()
    if 0 in snaps:
        rec.snapshot(0, scored_at(spec, 0, total))
    epoch = 0
    while step < total:
        # Each epoch is a fresh shuffle that depends only on (seed, epoch): resumable, reproducible.
        for idx in epoch_batches(len(train_set), spec.data.batch_size, spec.seed, epoch):
            if step == total:
                break
            lr = lr_at(step, total, spec.lr, schedule=spec.schedule, warmup=spec.warmup, min_lr=spec.min_lr)
            batch = collate(train_set, idx, pad_id, spec.data.train_on)
            tokens += token_count(train_set, idx)
            loss, gnorm = _step(run, spec, batch, lr, rec if track else None)
            step += 1
            rec.step(loss, gnorm, lr, flush=step % sync_every == 0 or step in snaps)
            if track:
                rec.weights()
            bar.update()
            for cb in callbacks:
                cb(StepInfo(step, epoch, rec.log["loss"][-1], lr, rec.log["grad_norm"][-1], run.model))
            if step == min(5, total // 4) and accel.device.type == "cuda":
                torch.cuda.synchronize()  # steady state starts after the first steps' allocations
                warm = (time.perf_counter(), tokens, rec.spent)
            if step in snaps:
                rec.snapshot(step, scored_at(spec, step, total))
        epoch += 1
    rec.flush()
    bar.close()
    if accel.device.type == "cuda":
        torch.cuda.synchronize()
    return _metrics(run, spec, rec, (per_epoch, total, snaps), tokens, t0, warm)


@dataclass
class _Prepared:
    """The model and optimizer as accelerate prepared them, and the parameter counts."""

    accel: object
    model: torch.nn.Module
    opt: torch.optim.Optimizer
    clip_params: list[torch.nn.Parameter]
    n_params: int
    n_train: int


def _prepare(model, spec, accel) -> _Prepared:
    fsdp = accel.distributed_type == DistributedType.FSDP
    model = modes.prepare(model, spec.mode)
    # FSDP moves each unit to the GPU as it shards it: the whole fp32 model may not fit one.
    model = model if fsdp else model.to(accel.device)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    n_params = sum(p.numel() for p in modes.base_model(model).parameters())
    n_train = sum(p.numel() for p in params)

    def optimizer_for(ps):
        return make_optimizer(spec, ps, fused=accel.device.type == "cuda")

    if fsdp:
        # FSDP1's order: shard first, then build the optimizer over the sharded parameters;
        # use_orig_params keeps requires_grad per parameter, so frozen ones stay out of it.
        model = accel.prepare(model)
        params = [p for p in model.parameters() if p.requires_grad]
        opt = accel.prepare(optimizer_for(params))
        clip_params = list(model.parameters())  # all of them: accelerate then clips with FSDP's global norm
    else:
        model, opt = accel.prepare(model, optimizer_for(params))
        clip_params = params
    return _Prepared(accel, model, opt, clip_params, n_params, n_train)


def _step(run: _Prepared, spec, batch: dict[str, torch.Tensor], lr: float, rec: Recorder | None
          ) -> tuple[torch.Tensor, torch.Tensor]:
    """One optimizer step on a collated global batch: (the batch's mean loss, the unclipped grad
    norm), both left on the device. `rec` records the tracked tensors' gradients."""
    accel, model, world = run.accel, run.model, run.accel.num_processes
    for g in run.opt.param_groups:
        g["lr"] = lr
    loss_kw = {}
    if world > 1:  # data parallel: this rank's rows, the loss normalised over the whole batch
        batch, loss_kw = dist.rank_rows(batch, accel.process_index, world)
    batch = {k: v.to(accel.device, non_blocking=True) for k, v in batch.items()}
    with accel.autocast():
        loss = model(**batch, **loss_kw).loss
    accel.backward(loss)
    if world > 1:  # the whole batch's mean loss, the same number on every rank
        loss = accel.reduce(loss.detach(), reduction="mean")
    if rec is not None:
        rec.grads()
    # Clip the global norm (and record it unclipped): one bad batch cannot wreck a tiny run.
    gnorm = accel.clip_grad_norm_(run.clip_params, spec.grad_clip if spec.grad_clip else math.inf)
    run.opt.step()
    run.opt.zero_grad(set_to_none=True)
    return loss.detach(), torch.as_tensor(gnorm).detach()


def _metrics(run: _Prepared, spec, rec: Recorder, plan: tuple[int, int, list[int]], tokens: int,
             t0: float, warm: tuple[float, int, float]) -> dict:
    """metrics.json's training part: the log, the scores, and the throughput without snapshots."""
    accel, world = run.accel, run.accel.num_processes
    per_epoch, total, snaps = plan
    t_end = time.perf_counter()
    wall = t_end - t0
    busy = wall - rec.spent  # training alone: what steps/s and MFU are about
    out = {
        "steps_per_epoch": per_epoch, "total_steps": total, "snapshots": snaps,
        "params": run.n_params, "trainable_params": run.n_train, "train": rec.log, "evals": rec.evals,
        "track": rec.tracked, "wall_s": wall, "snapshot_s": rec.spent,
        "steps_per_s": total / busy if busy > 0 else None,
        "tokens_per_s": tokens / busy if busy > 0 else None, "tokens": tokens,
        "device": str(accel.device), "mixed_precision": accel.mixed_precision,
    }
    if world > 1:
        out["processes"], out["distributed_type"] = world, accel.distributed_type.value
    if accel.device.type == "cuda":
        t_warm, warm_tokens, warm_spent = warm
        steady = t_end - t_warm - (rec.spent - warm_spent)
        out["steady_tokens_per_s"] = (tokens - warm_tokens) / steady
        # tokens/s counts real tokens; FLOPs per token assume the padded batch width max_len;
        # the tokens are spread over `world` GPUs and MFU is per GPU
        out["mfu"] = flops.mfu(out["steady_tokens_per_s"] / world,
                               modes.base_model(accel.unwrap_model(run.model)).config,
                               spec.data.max_len, torch.cuda.get_device_name())
    return out
