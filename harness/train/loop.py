"""The one training loop, for every scale: setup → train (snapshots) → metrics.

Runs on accelerate: fp32 on CPU, bf16 autocast on GPU (fp32 master weights), and whatever
`accelerate launch` configures beyond one device. Step k is the model after k optimizer
updates; step 0 is the model as given. The caller owns where snapshots go (`sink`).

Under `accelerate launch` (harness.launch) every rank runs this loop: each takes its rows of
every batch, the loss is normalised over the whole batch, and only the main rank's sink is
called. Under FSDP the model is sharded before the optimizer is built over its parameters, and
a snapshot gathers the full state dict on every rank (harness.launch.dist).
"""

from __future__ import annotations

import fnmatch
import math
import time
from dataclasses import dataclass
from typing import Callable

import torch
from accelerate.utils import DistributedType
from tqdm.auto import tqdm

from harness import flops
from harness.data import TokenSet, collate, epoch_batches
from harness.errors import UplabError
from harness.launch import dist
from harness.train import modes
from harness.train.evaluate import evaluate
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


Sink = Callable[[int, dict[str, torch.Tensor]], None]


def set_seed(seed: int) -> None:
    """The one seed: python, numpy and torch (CPU and CUDA) generators, via accelerate."""
    from accelerate.utils import set_seed as _set

    _set(seed)


def _accelerator(precision: str):
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState

    cuda = torch.cuda.is_available()
    mixed = {"auto": "bf16" if cuda else "no", "fp32": "no", "bf16": "bf16"}[precision]
    if mixed == "bf16" and not cuda:
        raise UplabError("precision 'bf16' needs a CUDA device; use 'auto' or 'fp32' on CPU")
    # accelerate keeps one process-wide state and refuses a second precision: runs of both kinds
    # in one process (an fp32 control beside bf16 runs) reset it (the process group is kept).
    if AcceleratorState._shared_state.get("_mixed_precision", mixed) != mixed:
        AcceleratorState._reset_state()
    return Accelerator(cpu=not cuda, mixed_precision=mixed)


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
    fsdp = accel.distributed_type == DistributedType.FSDP
    world = accel.num_processes
    if fsdp and spec.track:
        raise UplabError("track needs whole tensors at every step, which FSDP shards; "
                         "drop track or run on one GPU")
    model = modes.prepare(model, spec.mode)
    # FSDP moves each unit to the GPU as it shards it: the whole fp32 model may not fit one.
    model = model if fsdp else model.to(accel.device)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    n_params = sum(p.numel() for p in modes.base_model(model).parameters())
    n_train = sum(p.numel() for p in params)

    # AdamW with nanoGPT's betas; weight decay only if asked (it would shrink zeroed modules' growth).
    def adamw(ps):
        return torch.optim.AdamW(ps, lr=spec.lr, betas=(0.9, 0.95), weight_decay=spec.weight_decay,
                                 fused=accel.device.type == "cuda")

    if fsdp:
        # FSDP1's order: shard first, then build the optimizer over the sharded parameters;
        # use_orig_params keeps requires_grad per parameter, so frozen ones stay out of it.
        model = accel.prepare(model)
        params = [p for p in model.parameters() if p.requires_grad]
        opt = accel.prepare(adamw(params))
        clip_params = list(model.parameters())  # all of them: accelerate then clips with FSDP's global norm
    else:
        model, opt = accel.prepare(model, adamw(params))
        clip_params = params
    # Listing names would gather every tensor under FSDP: only when asked.
    track = _tracked_names(accel.unwrap_model(model), spec.track) if spec.track else []
    log = {"loss": [], "lr": [], "grad_norm": []}
    tracked = {n: {"weight_norm": [], "grad_norm": []} for n in track}
    evals: list[dict] = []
    # Held-out batches: large on CPU (fewer passes); on a GPU the training batch, which fits.
    eval_batch = 256 if accel.device.type == "cpu" else spec.data.batch_size

    def record_weights():
        with torch.no_grad():
            for n, w in modes.tracked_weights(accel.unwrap_model(model), track).items():
                tracked[n]["weight_norm"].append(float(w.float().norm()))

    def snapshot(step: int):
        # Held-out scores on every eval set, then the effective fp32 weights to the sink.
        t = time.perf_counter()
        scores = {k: evaluate(model, ts, pad_id, device=accel.device, autocast=accel.autocast,
                              batch_size=eval_batch) for k, ts in eval_sets.items()}
        evals.append({"step": step, "epoch": step / per_epoch, "sets": scores})
        state = dist.snapshot_state(accel, model)  # a collective under FSDP; None off the main rank
        if state is not None:
            sink(step, state)
        spent[0] += time.perf_counter() - t

    spent = [0.0]  # seconds in snapshots (evals, saving), kept out of the throughput

    # On a GPU, reading the loss every step would stall the launch queue: read it in batches.
    sync_every = 1 if accel.device.type == "cpu" or callbacks or track else 50
    pending: list[tuple[torch.Tensor, torch.Tensor, float]] = []

    def flush():
        for loss_t, gn_t, lr_ in pending:
            loss_f = float(loss_t)
            if not math.isfinite(loss_f):
                raise UplabError(f"training loss became {loss_f} at step {len(log['loss']) + 1} (lr {lr_:g}); "
                                 "lower lr or raise grad_clip")
            log["loss"].append(loss_f)
            log["lr"].append(lr_)
            log["grad_norm"].append(float(gn_t))
        pending.clear()
        if log["loss"]:
            bar.set_postfix(loss=f"{log['loss'][-1]:.3f}", refresh=False)

    bar = tqdm(total=total, desc="train", unit="step", disable=not progress, leave=False)
    step, tokens, t0 = 0, 0, time.perf_counter()
    t_warm, warm_tokens, warm_spent = t0, 0, 0.0
    record_weights()
    if 0 in snaps:
        snapshot(0)
    epoch = 0
    while step < total:
        # Each epoch is a fresh shuffle that depends only on (seed, epoch): resumable, reproducible.
        for idx in epoch_batches(len(train_set), spec.data.batch_size, spec.seed, epoch):
            if step == total:
                break
            lr = lr_at(step, total, spec.lr, schedule=spec.schedule, warmup=spec.warmup, min_lr=spec.min_lr)
            for g in opt.param_groups:
                g["lr"] = lr
            batch = collate(train_set, idx, pad_id, spec.data.train_on)
            tokens += int((batch["input_ids"] != pad_id).sum())  # counted on the CPU copy: no sync
            loss_kw = {}
            if world > 1:  # data parallel: this rank's rows, the loss normalised over the whole batch
                batch, loss_kw = dist.rank_rows(batch, accel.process_index, world)
            batch = {k: v.to(accel.device, non_blocking=True) for k, v in batch.items()}
            with accel.autocast():
                loss = model(**batch, **loss_kw).loss
            accel.backward(loss)
            if world > 1:  # the whole batch's mean loss, the same number on every rank
                loss = accel.reduce(loss.detach(), reduction="mean")
            if track:
                for n, g in modes.tracked_grads(accel.unwrap_model(model), track).items():
                    tracked[n]["grad_norm"].append(g)
            # Clip the global norm (and record it unclipped): one bad batch cannot wreck a tiny run.
            gnorm = accel.clip_grad_norm_(clip_params, spec.grad_clip if spec.grad_clip else math.inf)
            opt.step()
            opt.zero_grad(set_to_none=True)
            step += 1
            pending.append((loss.detach(), torch.as_tensor(gnorm).detach(), lr))
            if step % sync_every == 0 or step in snaps:
                flush()
            if track:
                record_weights()
            bar.update()
            for cb in callbacks:
                cb(StepInfo(step, epoch, log["loss"][-1], lr, log["grad_norm"][-1], model))
            if step == min(5, total // 4) and accel.device.type == "cuda":
                torch.cuda.synchronize()  # steady state starts after the first steps' allocations
                t_warm, warm_tokens, warm_spent = time.perf_counter(), tokens, spent[0]
            if step in snaps:
                snapshot(step)
        epoch += 1
    flush()
    bar.close()
    if accel.device.type == "cuda":
        torch.cuda.synchronize()
    t_end = time.perf_counter()
    wall = t_end - t0
    busy = wall - spent[0]  # training alone: what steps/s and MFU are about
    out = {
        "steps_per_epoch": per_epoch, "total_steps": total, "snapshots": snaps,
        "params": n_params, "trainable_params": n_train, "train": log, "evals": evals,
        "track": tracked, "wall_s": wall, "snapshot_s": spent[0],
        "steps_per_s": total / busy if busy > 0 else None,
        "tokens_per_s": tokens / busy if busy > 0 else None, "tokens": tokens,
        "device": str(accel.device), "mixed_precision": accel.mixed_precision,
    }
    if world > 1:
        out["processes"], out["distributed_type"] = world, accel.distributed_type.value
    if accel.device.type == "cuda":
        steady = t_end - t_warm - (spent[0] - warm_spent)
        out["steady_tokens_per_s"] = (tokens - warm_tokens) / steady
        # tokens/s counts real tokens; FLOPs per token assume the padded batch width max_len;
        # the tokens are spread over `world` GPUs and MFU is per GPU
        out["mfu"] = flops.mfu(out["steady_tokens_per_s"] / world, modes.base_model(accel.unwrap_model(model)).config,
                               spec.data.max_len, torch.cuda.get_device_name())
    return out
