"""Runs larger than one GPU: memory needed per mode (resources), `accelerate launch` of a run
spec under the shipped FSDP config (command, entry). What a run does as one of several processes
lives beside the training loop (harness.train.dist).

`get_or_launch(spec, cache)` is the one call for callers that do not care how a run is placed:
from the cache if finished; in this process when it fits one device; else launched over the
visible GPUs.
"""

from harness.launch.command import get_or_launch, launch_argv, needs_launch, run_launched

__all__ = ["get_or_launch", "needs_launch", "run_launched", "launch_argv"]
