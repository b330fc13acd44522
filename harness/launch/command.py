"""Placing a run: in this process when one GPU holds it, else `accelerate launch` under FSDP.

plan → command → execute, as elsewhere: `needs_launch` decides from the memory model
(harness.launch.resources) without touching a weight; `launch_argv` is the exact command, a
value a test can compare; `run_launched` runs it and returns the cache entry it wrote.
"""

from __future__ import annotations

import os
import shlex
import socket
import subprocess
import sys
import tempfile
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock

from harness.errors import UplabError
from harness.launch import resources as R

CONFIGS = Path(__file__).parent / "configs"
FSDP_CONFIG = CONFIGS / "fsdp.yaml"
DDP_CONFIG = CONFIGS / "ddp.yaml"
# Set by fixtures/gpus.py in an xdist worker pinned to one GPU: the controller's devices, which a
# multi-rank launch from that worker may use (its own CUDA_VISIBLE_DEVICES names one device only).
NODE_DEVICES = "UPLAB_NODE_DEVICES"
# Folder of the node-wide per-GPU locks (default: the system's temp folder, shared by every
# process on the machine).
GPU_LOCKS = "UPLAB_GPU_LOCKS"


def decoder_layer_class(architecture: str) -> str:
    """The class FSDP wraps as one unit: what transformers itself declares unsplittable
    (`_no_split_modules`) for the architecture, e.g. MistralForCausalLM -> MistralDecoderLayer."""
    import transformers

    cls = getattr(transformers, architecture, None)
    names = getattr(cls, "_no_split_modules", None) or []
    if not names:
        raise UplabError(f"transformers has no model class {architecture!r} with a decoder layer to "
                         "shard; check the config's `architectures` (e.g. MistralForCausalLM)")
    return names[0]


def launch_argv(spec_path: str | Path, cache_dir: str | Path, processes: int, *,
                config: str | Path = FSDP_CONFIG, layer_class: str | None = None,
                port: int | None = None, quiet: bool = False, built: str | Path | None = None) -> list[str]:
    """`accelerate launch` of the entry over `processes` ranks on this machine."""
    # `python -m accelerate.commands.launch` is the `accelerate launch` console script, run by this
    # interpreter: the child sees the same environment, whatever is on PATH.
    argv = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(config),
            "--num_processes", str(processes), "--num_machines", "1"]
    if port is not None:
        argv += ["--main_process_port", str(port)]
    if layer_class is not None:
        argv += ["--fsdp_transformer_layer_cls_to_wrap", layer_class]
    argv += ["-m", "harness.launch.entry", str(spec_path), "--cache", str(cache_dir)]
    if built is not None:
        argv += ["--built", str(built)]
    return argv + (["--quiet"] if quiet else [])


@dataclass(frozen=True)
class Placement:
    """Where a run goes: `processes` ranks, sharded with FSDP or not; the estimate behind it."""

    processes: int
    fsdp: bool
    estimate: R.Estimate | None  # None on a machine without GPUs (host memory is not modelled)

    @property
    def launch(self) -> bool:
        return self.fsdp


def _plan(plan):
    from harness.plan import Plan, load_plan, parse_plan

    if plan is None or isinstance(plan, Plan):
        return plan
    if isinstance(plan, Path) or (isinstance(plan, str) and "\n" not in plan):
        return load_plan(plan)
    return parse_plan(plan, origin="run spec plan")


def needs_launch(config: dict, plan, mode, gpus: int, gpu_memory: float, *, seq_len: int,
                 batch: int) -> Placement:
    """This process when one GPU of `gpu_memory` GiB holds the run (or there is no GPU), else
    FSDP over all `gpus`; an error naming the numbers when even they are not enough.

    `plan` (a Plan, YAML text or path, or None) upscales `config` first; `mode` is the run spec's.
    """
    plan = _plan(plan)
    base_params = 0
    if plan is not None:  # applied in memory after loading the base: both on the host at once
        base_params = R.Dims.from_config(config).params()
        config, _ = R.upscale(config, plan)
    d = R.Dims.from_config(config)
    t = R.Trainable.of(mode, d.layers)
    if gpus < 1:
        return Placement(1, False, None)
    gpu_bytes = gpu_memory * R.GIB
    single = R.estimate(d, t, gpus=1, fsdp=False, seq_len=seq_len, batch=batch, base_params=base_params)
    if single.fits(gpu_bytes):
        return Placement(1, False, single)
    sharded = R.estimate(d, t, gpus=gpus, fsdp=True, seq_len=seq_len, batch=batch, base_params=base_params)
    if sharded.fits(gpu_bytes):
        return Placement(gpus, True, sharded)
    need = R.min_gpus(d, t, gpu_bytes, seq_len=seq_len, batch=batch)
    wanted = f"{need.gpus} GPUs" if need else f"more than {R.MAX_GPUS} GPUs"
    raise UplabError(
        f"a {mode.kind} fine-tune of this {d.params() / 1e9:.1f}e9-parameter model ({batch} × {seq_len} "
        f"tokens a step) needs {R.gib(sharded.total)} per GPU over the {gpus} visible GPUs of "
        f"{gpu_memory:g} GiB ({R.gib(R.USABLE * gpu_bytes)} usable each): it needs {wanted}; use more "
        "or larger GPUs, a smaller batch or max_len, or LoRA")


def spec_config(spec) -> dict:
    """The config.json of the model a run spec trains: its root's, with every plan of the chain applied."""
    from harness import tiny
    from harness.runs.spec import RunSpec, Scratch

    chain = []
    node = spec
    while isinstance(node, RunSpec):
        chain.append(node)
        node = node.base
    if isinstance(node, Scratch):
        config = tiny.preset(node.preset).hf_config().to_dict()
    else:  # a LocalBase: its config.json
        config, _ = R.load_config(node.path)
    for s in reversed(chain):
        if s.plan is not None:
            config, _ = R.upscale(config, s.plan)
    return config


def _free_port() -> int:
    # Concurrent launches (pytest-xdist workers) would collide on accelerate's default 29500.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def build_on_disk(spec, cache_dir: str | Path, *, progress: bool = False) -> Path | None:
    """The spec's upscale (a local checkpoint with the spec's plan applied) written once under
    `<cache>/.built/`, for a launch's ranks to load; None when the spec has no plan over a local
    checkpoint. Applied in memory, every rank would hold the fp32 base beside its upscale
    (2 x 88 + 156 GB per rank for the seed's 39B); loaded from disk, one fp32 model."""
    import hashlib

    from harness.build.native import upscale_checkpoint
    from harness.runs.spec import LocalBase

    if spec.plan is None or not isinstance(spec.base, LocalBase):
        return None
    src = Path(spec.base.path).expanduser().resolve()
    out = Path(cache_dir) / ".built" / hashlib.sha256(f"{src}\n{spec.plan.text}".encode()).hexdigest()[:24]
    if not (out / "config.json").is_file():  # staged_output publishes a finished folder only
        upscale_checkpoint(src, spec.plan, out, progress=progress)
    return out


def run_launched(spec, cache_dir: str | Path, gpus: int, *, config: str | Path = FSDP_CONFIG,
                 port: int | None = None, quiet: bool = False, env: dict | None = None,
                 built: str | Path | None = None):
    """Run `spec` through `accelerate launch` over `gpus` ranks; the cache entry it wrote.

    The children inherit stdout/stderr, so progress and a failing rank's error show as they happen.
    """
    from harness.runs.cache import lookup
    from harness.runs.engine import Engine

    cache = Path(cache_dir)
    layer_class = None
    if Path(config) == FSDP_CONFIG:
        layer_class = decoder_layer_class(R.Dims.from_config(spec_config(spec)).architecture)
    with tempfile.TemporaryDirectory(prefix="uplab-launch-") as tmp:
        spec_path = Path(tmp) / "spec.json"
        spec_path.write_text(spec.model_dump_json())
        argv = launch_argv(spec_path, cache, gpus, config=config, layer_class=layer_class,
                           port=port if port is not None else _free_port(), quiet=quiet, built=built)
        code = subprocess.run(argv, env=env).returncode
    if code != 0:
        raise UplabError(f"accelerate launch exited with {code} (the failing rank's error is above): "
                         f"{shlex.join(argv)}")
    hit = lookup(spec, cache, Engine.here(ranks=gpus))  # the ranks' entry: keyed by their number
    if hit is None:
        raise UplabError(f"accelerate launch finished but run {spec.key[:12]} has no complete entry in "
                         f"{cache}; rerun with the command: {shlex.join(argv)}")
    return hit


def visible_gpus() -> tuple[int, float]:
    """(count, GiB of the smallest) of the CUDA devices this process sees."""
    import torch

    if not torch.cuda.is_available():
        return 0, 0.0
    n = torch.cuda.device_count()
    return n, min(torch.cuda.get_device_properties(i).total_memory for i in range(n)) / R.GIB


def _split(value: str) -> list[str]:
    return [t.strip() for t in value.split(",") if t.strip()]


def own_devices(count: int) -> list[str]:
    """The ids (as the node names them) of the `count` devices this process sees."""
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    ids = _split(env) if env is not None else [str(i) for i in range(count)]
    return ids[:count]


def node_devices(count: int) -> list[str]:
    """The devices a multi-rank launch from this process may use: the node's when this process
    is an xdist worker pinned to one of them (fixtures/gpus.py), else this process's own."""
    if count == 0:
        return []
    return _split(os.environ.get(NODE_DEVICES, "")) or own_devices(count)


@contextmanager
def gpu_locks(devices: list[str]):
    """Hold the node-wide lock of every device in `devices` (in one global order, so two
    processes asking for overlapping sets cannot deadlock). A launch takes all of its devices, a
    run in this process its one: two pytest-xdist workers never start two multi-rank jobs on the
    same GPUs, nor train on a GPU that a launch is using."""
    folder = Path(os.environ.get(GPU_LOCKS) or tempfile.gettempdir())
    with ExitStack() as stack:
        for d in sorted(set(devices)):
            stack.enter_context(FileLock(str(folder / f"uplab-gpu-{d}.lock")))
        yield


def get_or_launch(spec, cache_dir: str | Path | None = None, *, progress: bool = True):
    """The run's cache entry: reused if finished; else trained in this process when one GPU
    holds it, else launched with FSDP over the node's GPUs (every GPU the xdist controller may
    use, when this process is a worker pinned to one)."""
    from harness.runs.cache import default_cache_dir, get_or_run, lookup

    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    hit = lookup(spec, cache)
    if hit is not None:
        return hit
    count, memory = visible_gpus()
    node = node_devices(count)
    # The node's other GPUs are not visible here: a node's GPUs are taken to be alike, so each
    # has the memory of this process's smallest.
    place = needs_launch(spec_config(spec), None, spec.mode, len(node), memory,
                         seq_len=spec.data.max_len, batch=spec.data.batch_size)
    if not place.launch:
        with gpu_locks(own_devices(count)[:1]):  # the one device this process trains on
            return get_or_run(spec, cache, progress=progress)
    with gpu_locks(node):
        hit = lookup(spec, cache)  # launched by another worker while this one waited
        if hit is not None:
            return hit
        # The plan is applied once, here, on disk (the README's advice, now taken by the code)
        built = build_on_disk(spec, cache, progress=progress)
        # The children see the node's devices, whatever this worker was pinned to.
        env = {**os.environ, "CUDA_VISIBLE_DEVICES": ",".join(node)}
        return run_launched(spec, cache, place.processes, quiet=not progress, env=env, built=built)
