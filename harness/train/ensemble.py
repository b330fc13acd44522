"""N seeds of one run kind trained as one computation (harness.train.stacked), metrics per seed.

The specs must be equal up to their seed (and their bases'). What stays per seed is what the
per-seed loop (harness.train.loop) draws from the seed: the model each caller built (its base
and init), the LoRA init (peft draws it right after set_seed(seed), as the loop does), and the
data order (epoch_batches(seed, epoch)). Every batch of the N seeds is right-padded to the widest
one: the extra pads carry no label and, the model being causal, change no real token's output.

The optimizer is the loop's (harness.train.optimizer; AdamW fused) over the stacked tensors
(element-wise, so each seed's row gets exactly its own update; the loop's LR schedule), after clipping
each seed's gradients by that seed's global norm. Fused: one pass per tensor instead of ~10; on
the CPU it cut the optimizer step of 12 stacked tiny seeds from 43 to 17 ms. Each seed gets the loop's metrics dict (same keys);
time-based numbers (wall_s, steps_per_s, tokens_per_s) are the shared run's, with tokens the seed's.

Where (`placement`): on a CUDA device whenever there is one, as the per-seed loop does, so a
`precision: fp32` spec on a GPU machine trains fp32 on the GPU, not silently on the CPU; bf16
autocast over fp32 master weights when the precision resolves to bf16 (auto on a GPU, or bf16),
as the loop's Accelerator does; fp32 on the CPU otherwise. On a GPU, tiny and small runs are
bound by kernel launches, which N seeds share. Which engine, device and autocast dtype trained
a run changes its bits: the run key must name them (harness.runs.spec).
"""

from __future__ import annotations

import math
import time
from contextlib import nullcontext
from typing import Callable

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from harness.data import IGNORE, TokenSet, collate, epoch_batches, token_count
from harness.errors import UplabError
from harness.train import modes, reuse
from harness.train.evaluate import EVAL_BATCH, evaluate_many
from harness.train.loop import _tracked_names, plan_steps, set_seed
from harness.train.optimizer import make_optimizer
from harness.train.record import scored_at
from harness.train.schedule import lr_at
from harness.train.stacked import Stacked, check_forward, unsupported

Sink = Callable[[int, dict[str, torch.Tensor]], None]

# Fields that may differ between the specs trained together.
PER_SEED = ("seed", "base")


def same_kind(specs) -> str | None:
    """Why `specs` cannot train together (a field other than seed/base differs), or None."""
    first = specs[0].model_dump(exclude=set(PER_SEED))
    for s in specs[1:]:
        other = s.model_dump(exclude=set(PER_SEED))
        if other != first:
            diff = sorted(k for k in first if first[k] != other[k])
            return f"specs differ in {', '.join(diff)}, not only in seed"
    return None


# Weights, gradients and Adam's two moments of every stacked seed, in fp32, must stay under this
# (activations come on top, ~45 MB per tiny seed at batch 32): beyond it seeds train one by one.
MAX_STACK_BYTES = 4 * 2**30


def cannot_stack(model, spec, seeds: int = 1) -> str | None:
    """Why `seeds` copies of this (unprepared HF) model, trained as `spec`, must train in the
    per-seed loop, or None."""
    need = seeds * sum(p.numel() for p in model.parameters()) * 4 * 4
    if need > MAX_STACK_BYTES:
        return (f"{seeds} stacked copies need {need / 2**30:.1f} GiB for weights, gradients and Adam "
                f"state (limit {MAX_STACK_BYTES / 2**30:.0f} GiB)")
    if isinstance(spec.mode, modes.Lora) and spec.mode.dropout:
        return "LoRA dropout draws random masks per seed, which a stacked forward cannot reproduce"
    return unsupported(model, spec.data.max_len)


# Tests only: a device standing in for CUDA (the CPU), so that the CUDA branch of `placement`
# (device, bf16 autocast, batched loss reads) runs on a machine without a GPU.
CUDA_STANDIN: torch.device | None = None
SYNC_EVERY = 50  # on a GPU, steps between reads of the losses (each read waits for the queue)


def _cuda() -> torch.device | None:
    if CUDA_STANDIN is not None:
        return CUDA_STANDIN
    return torch.device("cuda", torch.cuda.current_device()) if torch.cuda.is_available() else None


def placement(spec) -> tuple[torch.device, torch.dtype | None, bool]:
    """(device, autocast dtype or None, whether this is the CUDA branch) for stacked seeds of `spec`."""
    cuda = _cuda()
    if cuda is None:
        if spec.precision == "bf16":
            raise UplabError("precision 'bf16' needs a CUDA device; use 'auto' or 'fp32' on CPU")
        return torch.device("cpu"), None, False
    return cuda, (None if spec.precision == "fp32" else torch.bfloat16), True


def _batch(train_set: TokenSet, idx: list, pad_id: int, train_on: str) -> tuple[torch.Tensor, torch.Tensor, list[int]]:
    """The N seeds' batches, right-padded to one width: ids, labels [N, B, T] and tokens per seed."""
    bs = [collate(train_set, i, pad_id, train_on) for i in idx]
    width = max(b["input_ids"].shape[1] for b in bs)
    ids = torch.stack([F.pad(b["input_ids"], (0, width - b["input_ids"].shape[1]), value=pad_id) for b in bs])
    labels = torch.stack([F.pad(b["labels"], (0, width - b["labels"].shape[1]), value=IGNORE) for b in bs])
    return ids, labels, [token_count(train_set, i) for i in idx]


def train_many(models: list, specs: list, train_set: TokenSet, eval_sets: dict[str, TokenSet], *,
               pad_id: int, sinks: list[Sink], progress: bool = True) -> list[dict]:
    """Train models[i] as specs[i] says, all N at once; snapshots go to sinks[i]; metrics per seed."""
    why = same_kind(specs)
    if why:
        raise UplabError(f"cannot train these runs together: {why}")
    uses = [m.config.use_cache for m in models]
    for m in models:
        m.config.use_cache = False
    try:
        return _train_many(models, specs, train_set, eval_sets, pad_id=pad_id, sinks=sinks, progress=progress)
    finally:
        for m, u in zip(models, uses):
            m.config.use_cache = u


def _train_many(models, specs, train_set, eval_sets, *, pad_id, sinks, progress) -> list[dict]:
    spec = specs[0]
    n = len(specs)
    device, amp, on_cuda = placement(spec)

    def autocast():
        return torch.autocast(device.type, dtype=amp) if amp is not None else nullcontext()

    per_epoch, total, snaps = plan_steps(spec, len(train_set))
    prepared = []
    for m, s in zip(models, specs):
        set_seed(s.seed)  # what the loop does before prepare: LoRA's A init follows the seed
        prepared.append(modes.prepare(m, s.mode).to(device).train())
    n_params = sum(p.numel() for p in modes.base_model(prepared[0]).parameters())
    n_train = sum(p.numel() for p in prepared[0].parameters() if p.requires_grad)
    st = Stacked(prepared, device)
    opt = make_optimizer(spec, list(st.trainable.values()), fused=True)
    track = _tracked_names(modes.base_model(prepared[0]), spec.track) if spec.track else []
    logs = [{"loss": [], "lr": [], "grad_norm": []} for _ in range(n)]
    tracked = [{k: {"weight_norm": [], "grad_norm": []} for k in track} for _ in range(n)]
    evals: list[list[dict]] = [[] for _ in range(n)]
    tokens = [0] * n
    spent = [0.0]

    def record_weights():
        with torch.no_grad():
            for i, m in enumerate(prepared):
                for k, w in modes.tracked_weights(m, track).items():
                    tracked[i][k]["weight_norm"].append(float(w.float().norm()))

    def scores_now() -> dict[str, list[dict]]:
        batch = max(1, EVAL_BATCH // n)
        fn = reuse.function_key([m.state_dict() for m in prepared], type(prepared[0]).__name__,
                                prepared[0].config.to_json_string(), f"stack|{n}|{device}|{amp}|{batch}")

        def logits(ids):
            with autocast():  # scored as trained, as the loop scores under its autocast
                return st.logits(ids.expand(n, -1, -1))

        def score(ts) -> list[dict]:
            return evaluate_many(logits, n, ts, pad_id, device=device, batch_size=batch)

        return {k: reuse.scored(f"{fn}|{ts.digest}", lambda ts=ts: score(ts)) for k, ts in eval_sets.items()}

    def snapshot(step: int):
        t = time.perf_counter()
        scores = scores_now() if scored_at(spec, step, total) else None
        for i, m in enumerate(prepared):
            if scores is not None:
                evals[i].append({"step": step, "epoch": step / per_epoch,
                                 "sets": {k: per_seed[i] for k, per_seed in scores.items()}})
            sinks[i](step, modes.effective_state_dict(m))
        spent[0] += time.perf_counter() - t

    # A forward this stack does not reproduce fails here, before any update or snapshot.
    first = [epoch_batches(len(train_set), spec.data.batch_size, s.seed, 0)[0] for s in specs]
    check_forward(st, _batch(train_set, first, pad_id, spec.data.train_on)[0].to(device))
    bar = tqdm(total=total, desc=f"train x{n}", unit="step", disable=not progress, leave=False)
    # On a GPU, reading the losses every step would stall the launch queue: read them in batches.
    sync_every = SYNC_EVERY if on_cuda and not track else 1
    pending: list[tuple[int, float, torch.Tensor, torch.Tensor]] = []  # (step, lr, losses, norms)

    def flush():
        for at, lr_at_step, losses, gnorms in pending:
            for i, (lf, gn) in enumerate(zip(losses.tolist(), gnorms.tolist())):
                if not math.isfinite(lf):
                    raise UplabError(f"training loss of seed {specs[i].seed} became {lf} at step {at} "
                                     f"(lr {lr_at_step:g}); lower lr or raise grad_clip")
                logs[i]["loss"].append(lf)
                logs[i]["lr"].append(lr_at_step)
                logs[i]["grad_norm"].append(gn)
        pending.clear()

    step, t0 = 0, time.perf_counter()
    record_weights()
    if 0 in snaps:
        snapshot(0)
    epoch = 0
    while step < total:
        orders = [epoch_batches(len(train_set), spec.data.batch_size, s.seed, epoch) for s in specs]
        for j in range(len(orders[0])):
            if step == total:
                break
            lr = lr_at(step, total, spec.lr, schedule=spec.schedule, warmup=spec.warmup, min_lr=spec.min_lr)
            for g in opt.param_groups:
                g["lr"] = lr
            ids, labels, counts = _batch(train_set, [o[j] for o in orders], pad_id, spec.data.train_on)
            tokens = [a + b for a, b in zip(tokens, counts)]
            ids, labels = ids.to(device, non_blocking=True), labels.to(device, non_blocking=True)
            with autocast():
                loss = st.losses(ids, labels)
            loss.sum().backward()  # the seeds share no parameter: each row gets its own gradient
            if track:
                for i, g in enumerate(st.tracked_grads(track)):
                    for k, v in g.items():
                        tracked[i][k]["grad_norm"].append(v)
            norms = st.clip_(spec.grad_clip if spec.grad_clip else math.inf)
            opt.step()
            opt.zero_grad(set_to_none=True)
            step += 1
            pending.append((step, lr, loss.detach(), norms.detach()))
            if step % sync_every == 0 or step in snaps or step == total:
                flush()
            if track:
                record_weights()
            bar.update()
            if step in snaps:
                snapshot(step)
        epoch += 1
    flush()
    bar.close()
    if device.type == "cuda":
        torch.cuda.synchronize()
    wall = time.perf_counter() - t0
    busy = wall - spent[0]
    return [{
        "steps_per_epoch": per_epoch, "total_steps": total, "snapshots": snaps,
        "params": n_params, "trainable_params": n_train, "train": logs[i], "evals": evals[i],
        "track": tracked[i], "wall_s": wall, "snapshot_s": spent[0],
        "steps_per_s": total / busy if busy > 0 else None,
        "tokens_per_s": tokens[i] / busy if busy > 0 else None, "tokens": tokens[i],
        "device": str(device), "mixed_precision": "bf16" if amp is not None else "no",
    } for i in range(n)]
