"""Runs larger than one GPU: memory needed per mode (resources), `accelerate launch` of a run
spec under the shipped FSDP config (command, entry), and what a run does as one of several
processes (dist).

`get_or_launch(spec, cache)` is the one call for callers that do not care how a run is placed:
from the cache if finished; in this process when it fits one device; else launched over the
visible GPUs. Imported lazily: the training loop and the cache import `harness.launch.dist`,
which must not pull the launcher (and the runs package) in with it.
"""

from __future__ import annotations

__all__ = ["get_or_launch", "needs_launch", "run_launched", "launch_argv"]


def __getattr__(name: str):
    if name in __all__:
        from harness.launch import command

        return getattr(command, name)
    raise AttributeError(f"module 'harness.launch' has no attribute {name!r}")
