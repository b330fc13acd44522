"""What computed a run's bits beyond its spec: the cache key names the computation, not only the spec.

A spec alone does not fix its weights. The same seed trained alone and trained stacked with other
seeds (harness.train.ensemble) sums in another order, and a 1200-step pre-training amplifies that
round-off until the two are different models (base seed 0: 12.6 % apart in weights). The same
holds for the device, the resolved precision (`precision: "auto"` is fp32 on a CPU and bf16
autocast on a GPU) and the number of processes a launched run is split over. Keyed by the spec
alone, a cache handed back whichever of these computations happened to be cached first, so a
verdict depended on the cache's history.

So a cache entry's key is `entry_key(spec, engine, base)`: sha256 over the spec's key, the Engine
(the exact seeds trained together, or none; device and its CPU kernels, harness.runs.kernels;
resolved precision; ranks) and the entry key of
the base it started from (a fine-tune of a stacked base is another computation than a fine-tune
of the same base trained alone). A lookup can only return the computation it asked for; asking
for another one is a miss, never someone else's bits.

The suite asks for a run kind's seeds as one group (harness.runs.many): when any seed of the group
is missing, the whole group trains again (deterministic, so the seeds that were there get the
same bits and are not rewritten), and each seed's bits are always those of that group. A kind the
stacked forward cannot train (`<kind>.<device>.one-by-one` marker, below) is trained one seed at
a time: its engine has no stack, and a lookup of the group looks up those keys instead.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import torch

from harness.runs.spec import RunSpec, Scratch

# Bump when what an Engine means changes (old entries are then no longer found).
ENGINE_SCHEMA = "uplab.engine/1"


@dataclass(frozen=True)
class Engine:
    """How a run is computed: alone or stacked with `stack` (its exact seeds), where, how many ranks."""

    device: str  # "cpu" or "cuda": the kernels differ
    stack: tuple[int, ...] = ()  # seeds trained as one stacked computation; () = trained alone
    ranks: int = 1  # processes of a launched run (FSDP/DDP reduce in another order)
    kernels: str = ""  # the CPU kernels (harness.runs.kernels.describe); "" = not recorded (keys before them)

    @classmethod
    def here(cls, stack: tuple[int, ...] | list[int] = (), ranks: int = 1) -> "Engine":
        """This process's device; a stack of fewer than two seeds is a run alone."""
        from harness.runs import kernels

        stack = tuple(sorted(set(stack)))
        device = "cuda" if torch.cuda.is_available() else "cpu"
        return cls(device=device, stack=stack if len(stack) > 1 else (), ranks=ranks,
                   kernels=kernels.describe() if device == "cpu" else "")

    def alone(self) -> "Engine":
        return Engine(self.device, (), self.ranks, self.kernels)

    def precision(self, spec: RunSpec) -> str:
        """The precision the training loop resolves `spec.precision` to on this device."""
        if spec.precision == "auto":
            return "bf16" if self.device == "cuda" else "fp32"
        return spec.precision

    def describe(self, spec: RunSpec) -> dict:
        out = {"device": self.device, "precision": self.precision(spec), "stack": list(self.stack),
               "ranks": self.ranks}
        if self.kernels:  # absent when unrecorded, so the keys from before kernels were recorded stay
            out["kernels"] = self.kernels
        return out


def entry_key(spec: RunSpec, engine: Engine, base_key: str | None) -> str:
    """The cache key of `spec` computed by `engine` from the base entry `base_key` (None: the base
    is a scratch init or a local checkpoint, which the spec's own key already names)."""
    if engine.stack and spec.seed not in engine.stack:
        raise ValueError(f"seed {spec.seed} is not in the stack {engine.stack}")
    body = {"schema": ENGINE_SCHEMA, "spec": spec.key, "engine": engine.describe(spec), "base": base_key}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def kind_of(spec: RunSpec) -> RunSpec:
    """The spec with its seed, and its bases' seeds, set to 0: what seeds of one kind share. A
    training sample drawn by the run's own seed (`Text.draw`, the `real` scale) is the seed's too:
    without it every seed of a `real` kind was a kind of its own, and two workers queued behind
    each other seed by seed instead of sharing the kind's seeds out."""
    base = spec.base
    if isinstance(base, Scratch):
        base = base.model_copy(update={"seed": 0})
    elif isinstance(base, RunSpec):
        base = kind_of(base)
    update = {"seed": 0, "base": base}
    train = spec.data.train
    if getattr(train, "draw", None) is not None and train.draw == spec.seed:
        update["data"] = spec.data.model_copy(update={"train": train.model_copy(update={"draw": 0})})
    return spec.model_copy(update=update)


def marker(cache: Path, spec: RunSpec, engine: Engine) -> Path:
    """`<kind>.<device>.one-by-one`: written when a kind cannot be stacked at this many seeds.
    Per device: a mode or size that cannot be stacked on one device may be on another."""
    return cache / f"{kind_of(spec).key}.{engine.device}.one-by-one"


def one_by_one(cache: Path, spec: RunSpec, engine: Engine) -> bool:
    """Whether a process found that `len(engine.stack)` seeds of this kind cannot be stacked."""
    if not engine.stack:
        return True
    try:
        seeds = json.loads(marker(cache, spec, engine).read_text())["seeds"]
    except (OSError, ValueError, KeyError, TypeError):
        return False
    return isinstance(seeds, int) and len(engine.stack) >= seeds


def effective(cache: Path, spec: RunSpec, engine: Engine) -> Engine:
    """The engine `spec` is actually computed with when its group asks for `engine`."""
    return engine.alone() if engine.stack and one_by_one(cache, spec, engine) else engine
