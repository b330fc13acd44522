"""Run specs (frozen, content-hashed) and the cache that stores each run's snapshots and metrics."""

from harness.runs.cache import default_cache_dir, get_or_run, lookup
from harness.runs.engine import Engine, entry_key
from harness.runs.many import get_or_run_many, kind_of, lookup_in_group
from harness.runs.result import RunResult
from harness.runs.runner import apply_plan, execute, load_base
from harness.runs.spec import (SCHEMA, TINY_FINETUNE, TINY_PRETRAIN, LocalBase, RunSpec, Scratch,
                               finetune, make, tiny_base)

__all__ = [
    "Engine", "entry_key", "lookup_in_group", "RunResult", "default_cache_dir", "get_or_run", "get_or_run_many", "kind_of", "lookup", "apply_plan", "execute", "load_base",
    "SCHEMA", "TINY_FINETUNE", "TINY_PRETRAIN", "LocalBase", "RunSpec", "Scratch", "finetune",
    "make", "tiny_base",
]
