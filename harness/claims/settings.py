"""What each scale trains: the seed's layout mapped to a depth, and a `Setting` per scale.

A `Setting` is a plain value (the base of a seed, the fields of every fine-tune, the domains it
is scored on); the Lab (`harness.claims.lab`) turns it into runs. Settings of other scales
(`harness.claims.real`) build on this module, never on the Lab.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from harness import arch as arch_facts
from harness import strategies
from harness.plan import Plan
from harness.runs import RunResult, tiny_base
from harness.runs.spec import (SHORT_WARMUP, SMALL_FINETUNE, SMALL_PRETRAIN, TINY_FINETUNE, LocalBase,
                               tiny_target_data)
from harness.tiny import PRESETS

# The seed's 39B layout: 55 source layers, copies of [19, 41) twice (DESIGN §7; model card).
SEED_SOURCE_DEPTH, SEED_START, SEED_END, SEED_COPIES = 55, 19, 41, 2

# Snapshots of every default tiny/small fine-tune (two 64-step epochs; the epoch ends, 64 and 128,
# are snapshotted anyway): points for trajectories over time within the first epoch.
SNAPSHOTS = (0, 8, 16, 32, 48)
# At small, fewer: a 16M-parameter fp32 snapshot is 63 MB, and the suite's ~470 snapshots must fit
# a GPU runner's disk (~30 GB). Still enough for the claims that read a default run mid-way.
SMALL_SNAPSHOTS = (0, 16, 32)
STRATEGIES = ("contiguous", "interleaved", "single", "block")
# sgd_lr_for at each scale's default fine-tune lr and base size (tests/test_claims_lab.py checks
# them against the rule): tiny 6e-3 x sqrt(27,520) x 0.1 (10 layers, tasks.VERSION 6; 1.22e-1 at
# 16 layers, 41,536 parameters), small 1e-4 x sqrt(n) x 0.1.
TINY_SGD_LR = 9.95e-2
SMALL_SGD_LR = 4.0e-2


def seed_layout_range(depth: int) -> tuple[int, int]:
    """The seed's duplicated range [19, 41) of 55 mapped onto `depth` layers by proportion."""
    start = round(SEED_START / SEED_SOURCE_DEPTH * depth)
    end = round(SEED_END / SEED_SOURCE_DEPTH * depth)
    return start, max(end, start + 1)


@lru_cache(maxsize=None)
def plan_for(strategy: str, depth: int) -> Plan:
    """A strategy at `depth`, over the seed's duplicated range (single: its first layer)."""
    start, end = seed_layout_range(depth)
    if strategy == "contiguous":
        return strategies.contiguous(start, end, num_layers=depth, copies=SEED_COPIES)
    if strategy == "interleaved":
        return strategies.interleaved(start, end, num_layers=depth, copies=SEED_COPIES)
    if strategy == "single":
        return strategies.single(start, num_layers=depth)
    if strategy == "block":
        return strategies.block(2, start, end, num_layers=depth, copies=1)
    raise ValueError(f"unknown strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}")


@dataclass(frozen=True, eq=False)
class Setting:
    """What one scale trains: the base of a seed, the defaults of every fine-tune, what it scores."""

    scale: str
    depth: int  # layers of the base
    model_type: str
    base_of: Callable[[int], Any]  # seed -> RunSpec (pre-trained here) or LocalBase (given)
    finetune: Mapping[str, Any] = field(default_factory=dict)  # RunSpec fields of every fine-tune (fields_for)
    domains: tuple[str, ...] = ("original", "target")  # held-out sets every run is scored on
    epoch: Callable[[], int] | int = TINY_FINETUNE["steps_per_epoch"]  # fine-tune steps per epoch
    launcher: Callable[..., RunResult] | None = None  # runs too large for one process
    target_data: Callable[[str], Any] | None = None  # registry target name -> fine-tune DataSpec
    native_base: Callable[[int, int], Any] | None = None  # (seed, depth) -> a base pre-trained at depth
    sgd_lr: float | None = None  # the SGD control arm's learning rate (sgd_lr_for); None: no SGD arm
    # Check a claim's regime before training its own runs, and leave a claim not in regime
    # unmeasured (p = 1 in the Holm family): where those runs cost CPU-hours and tens of GB.
    regime_first: bool = False
    # Train a default fine-tune as its densely recorded twin (Lab.trained_spec) where the time
    # claims' long run is the same computation: one run instead of two, same numbers. Not where a
    # claim's own runs come after its regime (`real`): there the default pair trains first and a
    # dense recording would cost ~1 GB a snapshot for runs that may never be read.
    share_long: bool = False
    # Settle each long run (harness.claims.trajectory) as soon as it is trained: store what the
    # time claims read from its snapshots between the ends, then drop those snapshots. Where they
    # would not fit a runner's disk (`real`: ~27 GB a seed at the gpu profile); same numbers.
    thin_long: bool = False


def fields_for(finetune: Mapping[str, Any], seed: int) -> dict:
    """A Setting's fine-tune fields for one seed: `data` may be a function of the seed (`real`:
    each seed draws its own training blocks, harness.data.spec.Text.draw)."""
    out = dict(finetune)
    if callable(out.get("data")):
        out["data"] = out["data"](seed)
    return out


def cpu_threads() -> int:
    """CPU threads for one process: every core, or under pytest-xdist its share of them, so that
    `-n 8` on a 16-core runner does not start 8 x 16 threads for the measures' forward passes."""
    import os

    cores = os.cpu_count() or 1
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT") or 1) if os.environ.get("PYTEST_XDIST_WORKER") else 1
    return max(1, cores // max(1, workers))


def sgd_lr_for(adamw_lr: float, n_params: int) -> float:
    """The SGD arm's learning rate, fixed by a rule rather than tuned on any result: AdamW moves
    every element by about lr per step; SGD with momentum m moves it by lr·g/(1-m), and with
    gradients clipped to global norm 1 over n parameters the rms element of g is 1/sqrt(n) (every
    fine-tune here clips: the median unclipped norm of the tiny fine-tunes is ~23). Equal rms
    element steps: lr_sgd = lr_adamw·sqrt(n)·(1-m)."""
    from harness.train.optimizer import SGD_MOMENTUM

    return adamw_lr * n_params ** 0.5 * (1 - SGD_MOMENTUM)


def _params(preset: str) -> int:
    from harness import tiny

    return sum(p.numel() for p in tiny.build(tiny.preset(preset), 0).parameters())


def synthetic_target(domain: str):
    """The default fine-tune's data on another synthetic target domain (e.g. "conflict")."""
    return tiny_target_data(domain)


def tiny_setting() -> Setting:
    return Setting("tiny", PRESETS["tiny"].num_layers, PRESETS["tiny"].arch, tiny_base,
                   finetune={"snapshots": SNAPSHOTS}, target_data=synthetic_target,
                   native_base=lambda seed, depth: tiny_base(seed, preset=f"tiny@{depth}"),
                   sgd_lr=TINY_SGD_LR, share_long=True)


def small_setting() -> Setting:
    def base(seed: int):
        return tiny_base(seed, preset="small", **SMALL_PRETRAIN)

    return Setting("small", PRESETS["small"].num_layers, PRESETS["small"].arch, base,
                   finetune={"snapshots": SMALL_SNAPSHOTS, **SMALL_FINETUNE}, target_data=synthetic_target,
                   native_base=lambda seed, depth: tiny_base(seed, preset=f"small@{depth}", **SMALL_PRETRAIN),
                   sgd_lr=SMALL_SGD_LR, share_long=True)


def full_setting(base_model: Path, train_data: Path) -> Setting:
    from harness.checkpoint import read_config
    from harness.data import DataSpec, Local
    from harness.launch import get_or_launch

    config = read_config(base_model)  # one line naming the problem when it is not a checkpoint
    target = Local(path=str(train_data))
    data = DataSpec(train=target, evals={"target": target}, batch_size=8, max_len=512)
    checkpoint = LocalBase(path=str(base_model))

    def epoch() -> int:
        from harness.data import load
        from harness.runs.runner import tokenizer_for

        return len(load(data, tokenizer_for(checkpoint))[0]) // data.batch_size

    return Setting("full", config["num_hidden_layers"], config.get("model_type", arch_facts.FALLBACK),
                   lambda seed: checkpoint,
                   finetune={"data": data, "lr": 1e-5, "epochs": 1, "warmup": SHORT_WARMUP},
                   domains=("target",), epoch=epoch, launcher=get_or_launch)
