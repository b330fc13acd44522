"""What changes when a run is one of several processes (`accelerate launch`), beside the loop
that uses it (the cache and the launcher, above it, ask the same rank facts).

- Who writes: every rank trains, only the main rank writes the cache entry (runs.cache, runs.runner).
- How a batch splits: each rank takes its rows of the global batch; the loss is normalised by the
  whole batch's label count, so the averaged gradient equals the one-process gradient.
- How a snapshot gathers: under FSDP the full state dict is a collective (every rank calls it);
  the main rank turns it into effective weights (LoRA merged) for the sink.

- What FSDP casts: bf16 compute copies of the parameters, but buffers (RoPE's `inv_freq`) and
  the gradient reduction stay fp32 (`fsdp_plugin`), where accelerate's own bf16 policy casts all
  three to bf16.
- How long a rank waits: every collective runs under `timeout()` (default 2 h, not NCCL's 10 min):
  the main rank writes and hashes every snapshot of a finished run (2 x 156 GB at 39B) while the
  others wait for its word in a broadcast.

A single process (WORLD_SIZE unset or 1) takes none of these paths. Rank facts come from the
environment torchrun sets, so asking them never starts a process group.
"""

from __future__ import annotations

import math
import os
from datetime import timedelta

import torch

from harness.data import IGNORE
from harness.train import modes

# Module-path segments that FSDP and activation checkpointing insert around wrapped modules.
_WRAPPERS = ("_fsdp_wrapped_module.", "_checkpoint_wrapped_module.")


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    return int(os.environ.get("RANK", "0"))


def launched() -> bool:
    """True in a process started by `accelerate launch`/torchrun with more than one rank."""
    return world_size() > 1


def is_main() -> bool:
    return rank() == 0


TIMEOUT_ENV = "UPLAB_DIST_TIMEOUT_S"
# sha256 reads ~0.5-1 GB/s on one core: committing a 39B run's two 156 GB snapshots takes 5-10
# minutes on the main rank, and writing each snapshot a few more, all while the other ranks wait
# in a collective. NCCL's default (10 min) would kill a finished run; 2 h leaves a margin and
# still ends a rank that really hangs.
DEFAULT_TIMEOUT_S = 2 * 3600


def timeout() -> timedelta:
    """How long a rank waits in a collective before the process group gives up (UPLAB_DIST_TIMEOUT_S)."""
    raw = os.environ.get(TIMEOUT_ENV, "")
    try:
        seconds = float(raw) if raw.strip() else DEFAULT_TIMEOUT_S
    except ValueError:
        raise ValueError(f"{TIMEOUT_ENV}={raw!r} is not a number of seconds") from None
    if not seconds > 0:
        raise ValueError(f"{TIMEOUT_ENV}={raw!r} must be a positive number of seconds")
    return timedelta(seconds=seconds)


def _state():
    from accelerate import PartialState

    # The same choice as the training loop's Accelerator(cpu=not cuda): accelerate keeps one
    # process-wide state and refuses a second, different one. Whichever comes first starts the
    # process group, so both give it uplab's timeout.
    return PartialState(cpu=not torch.cuda.is_available(), timeout=timeout())


def mixed_precision():
    """FSDP1's policy for bf16 runs: parameters computed in bf16 (as autocast on one GPU);
    buffers kept fp32, so RoPE's inv_freq is the one-GPU run's (in bf16 it is rounded to 8 bits
    of mantissa and the angles drift at long positions: FSDP runs would train another function);
    gradients reduced in fp32, so that the small updates of lr ~1e-5 fine-tunes are not rounded
    away in the reduce-scatter."""
    from torch.distributed.fsdp import MixedPrecision

    return MixedPrecision(param_dtype=torch.bfloat16, reduce_dtype=torch.float32,
                          buffer_dtype=torch.float32)


def fsdp_plugin():
    """accelerate's FSDP plugin as the launch configured it (its FSDP_* environment), with
    `mixed_precision()` in place of the policy accelerate derives from mixed_precision=bf16
    (bf16 for parameters, reductions and buffers alike). An explicit policy is kept as given
    when the Accelerator applies its mixed precision to the plugin."""
    from accelerate.utils import FullyShardedDataParallelPlugin

    return FullyShardedDataParallelPlugin(mixed_precision_policy=mixed_precision())


def agree(value):
    """The main rank's `value`, on every rank. A collective: every rank must call it."""
    from accelerate.utils import broadcast_object_list

    _state()
    box = [value]
    broadcast_object_list(box, from_process=0)
    return box[0]


def close() -> None:
    """Tear the process group down before exit (gloo aborts the process otherwise)."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def rank_rows(batch: dict[str, torch.Tensor], rank: int, world: int) -> tuple[dict[str, torch.Tensor], dict]:
    """This rank's rows of a collated global batch, and the loss kwargs that make the ranks'
    averaged gradient equal the one-process gradient of the whole batch.

    The batch is padded to world * ceil(B / world) rows with label-free copies of row 0, so every
    rank runs the same number of rows (FSDP's collectives need every rank in every forward) and a
    batch smaller than the world still works. HF's loss divides the rank's summed token losses by
    `num_items_in_batch`; DDP/FSDP then average over ranks, hence the whole batch's count / world.
    """
    ids, labels = batch["input_ids"], batch["labels"]
    per = math.ceil(len(ids) / world)
    pad = per * world - len(ids)
    if pad:
        ids = torch.cat([ids, ids[:1].expand(pad, -1)])
        labels = torch.cat([labels, torch.full((pad, labels.shape[1]), IGNORE, dtype=labels.dtype)])
    rows = slice(rank * per, (rank + 1) * per)
    # position t predicts t+1: the tokens HF's causal loss counts are labels[:, 1:]
    counted = int((batch["labels"][:, 1:] != IGNORE).sum())
    return {"input_ids": ids[rows], "labels": labels[rows]}, {"num_items_in_batch": counted / world}


def snapshot_state(accel, model) -> dict[str, torch.Tensor] | None:
    """Effective fp32 CPU weights (HF names, LoRA merged) on the main rank; None on the others.

    Under FSDP every rank must call this: the full state dict is gathered unit by unit (rank 0
    only, offloaded to CPU, as accelerate configures FULL_STATE_DICT).
    """
    from accelerate.utils import DistributedType

    if accel.distributed_type == DistributedType.FSDP:
        full = accel.get_state_dict(model)
        return effective_from_state_dict(full, accel.unwrap_model(model)) if accel.is_main_process else None
    if not accel.is_main_process:
        return None
    return modes.effective_state_dict(accel.unwrap_model(model))


def _clean(name: str) -> str:
    for w in _WRAPPERS:
        name = name.replace(w, "")
    return name


def effective_from_state_dict(state: dict[str, torch.Tensor], model) -> dict[str, torch.Tensor]:
    """modes.effective_state_dict computed from a gathered state dict instead of live modules.

    `state` has the names of `model`'s own state_dict (a peft wrapper's `base_model.model.`
    prefix included); `model` only supplies the LoRA layers' scalings and adapters, whose weights
    may be sharded.
    """
    inner = modes.base_model(model)
    prefix = "base_model.model." if inner is not model else ""
    lora = modes._lora_layers(model) if inner is not model else {}
    out: dict[str, torch.Tensor] = {}
    for name, t in state.items():
        name = _clean(name)
        name = name[len(prefix):] if name.startswith(prefix) else name
        if ".lora_" in name:
            continue
        # FSDP's full state dict already holds a CPU copy of each tensor: no second one (a 39B
        # model's would be 156 GB more on the main rank's host)
        out[name.replace(".base_layer.", ".")] = t.detach().float().cpu()
    for mod_name, layer in lora.items():
        mod = _clean(mod_name)
        w = state[_full_name(state, prefix, f"{mod}.base_layer.weight")].detach().float().cpu()
        for adapter in layer.active_adapters:
            a = state[_full_name(state, prefix, f"{mod}.lora_A.{adapter}.weight")].detach().float().cpu()
            b = state[_full_name(state, prefix, f"{mod}.lora_B.{adapter}.weight")].detach().float().cpu()
            delta = b @ a
            w = w + (delta.T if layer.fan_in_fan_out else delta) * layer.scaling[adapter]
        out[f"{mod}.weight"] = w.contiguous()
    if getattr(inner.config, "tie_word_embeddings", False):
        out.pop("lm_head.weight", None)
    return out


def _full_name(state: dict, prefix: str, name: str) -> str:
    """The key in `state` for an inner module's tensor (state keys may keep wrapper segments)."""
    key = prefix + name
    if key in state:
        return key
    for k in state:
        if _clean(k) == key:
            return k
    raise KeyError(f"{key} is not in the gathered state dict")
