"""Launching a run over several processes (harness.launch): the exact `accelerate launch`
command, the shipped FSDP config as accelerate reads it, where a run goes, how a batch splits
over ranks, the FSDP snapshot's gathered weights, the entry, and a real multi-process launch on
CPU (gloo DDP) against the one-process run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from harness import tiny
from harness.data import DataSpec
from harness.errors import UplabError
from harness.launch import command, entry
from harness.launch import resources as R
from harness.plan import load_plan
from harness.runs import LocalBase, RunSpec, Scratch, finetune, get_or_run, lookup, tiny_base
from harness.train import dist
from harness.runs.cache import MARKER
from harness.train import modes
from harness.train.modes import Full, Lora

ROOT = Path(__file__).resolve().parents[1]
MISTRAL_22B = ROOT / "examples" / "mistral-small-22b.json"
SEED_39B = ROOT / "examples" / "seed-39b.yml"
torch.set_num_threads(1)

# The tiny plan every launched test trains: layers 3-5 copied once, their o_proj/down_proj zeroed.
PLAN = """merge_method: passthrough
slices:
  - sources: [{model: m, layer_range: [0, 6]}]
  - sources:
      - model: m
        layer_range: [3, 6]
        parameters:
          scale: [{filter: o_proj, value: 0.0}, {filter: down_proj, value: 0.0}, {value: 1.0}]
  - sources: [{model: m, layer_range: [6, 8]}]
"""


# ---- the command and the config -------------------------------------------------------------

def test_launch_argv_is_exactly_accelerate_launch_of_the_entry(tmp_path):
    argv = command.launch_argv(tmp_path / "spec.json", tmp_path / "cache", 8,
                               layer_class="MistralDecoderLayer", port=29612)
    assert argv == [
        sys.executable, "-m", "accelerate.commands.launch",
        "--config_file", str(ROOT / "harness" / "launch" / "configs" / "fsdp.yaml"),
        "--num_processes", "8", "--num_machines", "1", "--main_process_port", "29612",
        "--fsdp_transformer_layer_cls_to_wrap", "MistralDecoderLayer",
        "-m", "harness.launch.entry", str(tmp_path / "spec.json"), "--cache", str(tmp_path / "cache")]
    ddp = command.launch_argv("s.json", "c", 2, config=command.DDP_CONFIG, quiet=True)
    assert ddp[3:5] == ["--config_file", str(command.DDP_CONFIG)] and ddp[-1] == "--quiet"
    assert "--fsdp_transformer_layer_cls_to_wrap" not in ddp and "--main_process_port" not in ddp


def test_shipped_fsdp_yaml_is_an_accelerate_config_with_our_fields():
    from accelerate.commands.config.config_args import ClusterConfig, load_config_from_file
    from accelerate.utils import DistributedType

    config = load_config_from_file(str(command.FSDP_CONFIG))
    assert isinstance(config, ClusterConfig) and config.distributed_type == DistributedType.FSDP
    assert config.mixed_precision == "bf16" and config.num_machines == 1
    assert config.num_processes == -1  # the launch command always says how many
    assert config.fsdp_config == {
        "fsdp_version": 1, "fsdp_sharding_strategy": "FULL_SHARD",
        "fsdp_auto_wrap_policy": "TRANSFORMER_BASED_WRAP", "fsdp_backward_prefetch": "BACKWARD_PRE",
        "fsdp_forward_prefetch": False, "fsdp_use_orig_params": True,
        "fsdp_activation_checkpointing": True, "fsdp_state_dict_type": "FULL_STATE_DICT",
        "fsdp_offload_params": False, "fsdp_cpu_ram_efficient_loading": False,
        "fsdp_sync_module_states": True}
    assert load_config_from_file(str(command.DDP_CONFIG)).distributed_type == DistributedType.MULTI_GPU


def test_launch_command_builds_the_fsdp_plugin_we_configured(monkeypatch):
    # What accelerate does with our argv up to the worker's environment, then the plugin that
    # environment gives each rank's Accelerator; FSDP itself needs CUDA ranks.
    import accelerate.utils.dataclasses
    from accelerate.commands.launch import _validate_launch_command, launch_command_parser
    from accelerate.utils import FullyShardedDataParallelPlugin
    from accelerate.utils.launch import prepare_multi_gpu_env
    from torch.distributed.fsdp import BackwardPrefetch, ShardingStrategy, StateDictType

    argv = command.launch_argv("spec.json", "cache", 4, layer_class="MistralDecoderLayer", port=29613)
    assert argv[1:3] == ["-m", "accelerate.commands.launch"]
    args, _, _ = _validate_launch_command(launch_command_parser().parse_args(argv[3:]))
    assert args.use_fsdp and args.num_processes == 4 and args.main_process_port == 29613
    assert (args.module, args.training_script, args.training_script_args) == (
        True, "harness.launch.entry", ["spec.json", "--cache", "cache"])
    env = prepare_multi_gpu_env(args)
    assert env["ACCELERATE_USE_FSDP"] == "true" and env["ACCELERATE_MIXED_PRECISION"] == "bf16"
    for key in [k for k in os.environ if k.startswith("FSDP_")]:
        monkeypatch.delenv(key)
    for key, value in env.items():
        if key.startswith("FSDP_"):
            monkeypatch.setenv(key, value)
    # sync_module_states makes the plugin ask for the current CUDA device: pretend there is one
    # (accelerate < 1.16 asks is_cuda_available, later versions get_torch_accelerator_backend)
    monkeypatch.setattr(accelerate.utils.dataclasses, "is_cuda_available", lambda: True, raising=False)
    monkeypatch.setattr(accelerate.utils.dataclasses, "get_torch_accelerator_backend",
                        lambda *a, **k: ("cuda", torch.cuda), raising=False)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    plugin = FullyShardedDataParallelPlugin()
    assert plugin.fsdp_version == 1 and plugin.sharding_strategy == ShardingStrategy.FULL_SHARD
    assert plugin.use_orig_params and plugin.activation_checkpointing and plugin.sync_module_states
    assert plugin.state_dict_type == StateDictType.FULL_STATE_DICT
    assert plugin.backward_prefetch == BackwardPrefetch.BACKWARD_PRE
    assert plugin.transformer_cls_names_to_wrap == ["MistralDecoderLayer"]
    assert not plugin.cpu_offload.offload_params
    # the class is found in the model FSDP will wrap, LoRA-wrapped or not
    lora = modes.prepare(tiny.build(tiny.PRESETS["tiny"], 0), Lora(r=2))
    plugin.set_auto_wrap_policy(lora)
    layer = lora.get_base_model().model.layers[0]
    assert plugin.auto_wrap_policy(module=layer, recurse=False, nonwrapped_numel=0)


@pytest.mark.parametrize("preset, want", [("tiny", "MistralDecoderLayer"), ("tiny-llama", "LlamaDecoderLayer"),
                                          ("tiny-qwen2", "Qwen2DecoderLayer")])
def test_decoder_layer_class_per_architecture(preset, want):
    d = R.Dims.from_config(tiny.preset(preset).hf_config().to_dict())
    assert command.decoder_layer_class(d.architecture) == want
    model = tiny.build(tiny.PRESETS[preset], 0)
    assert type(model.model.layers[0]).__name__ == want
    config, _ = R.load_config(str(MISTRAL_22B))
    assert command.decoder_layer_class(config["architectures"][0]) == "MistralDecoderLayer"


def test_decoder_layer_class_of_an_unknown_architecture_is_one_line():
    with pytest.raises(UplabError, match="no model class 'NotAModelForCausalLM'"):
        command.decoder_layer_class("NotAModelForCausalLM")


# ---- where a run goes ------------------------------------------------------------------------

def seed_config() -> dict:
    return R.load_config(str(MISTRAL_22B))[0]


def test_needs_launch_keeps_what_fits_in_this_process():
    config = tiny.preset("tiny").hf_config().to_dict()
    place = command.needs_launch(config, None, Full(), 1, 80, seq_len=64, batch=32)
    assert (place.processes, place.launch) == (1, False) and place.estimate.total < 3 * R.GIB
    no_gpu = command.needs_launch(seed_config(), SEED_39B, Full(), 0, 0, seq_len=512, batch=8)
    assert (no_gpu.processes, no_gpu.launch, no_gpu.estimate) == (1, False, None)


def test_needs_launch_shards_over_every_visible_gpu_when_one_is_not_enough():
    place = command.needs_launch(seed_config(), str(SEED_39B), Lora(), 8, 80, seq_len=512, batch=8)
    assert (place.processes, place.launch) == (8, True)
    assert place.estimate.fits(80 * R.GIB) and place.estimate.gpus == 8
    # the plan may also come as text (a run spec's) or as a parsed Plan
    assert command.needs_launch(seed_config(), SEED_39B.read_text(), Lora(), 8, 80, seq_len=512,
                                batch=8) == place
    assert command.needs_launch(seed_config(), load_plan(SEED_39B), Lora(), 8, 80, seq_len=512,
                                batch=8) == place


def test_needs_launch_names_the_numbers_when_the_visible_gpus_are_not_enough():
    with pytest.raises(UplabError) as e:
        command.needs_launch(seed_config(), SEED_39B, Full(), 8, 80, seq_len=512, batch=8)
    msg = str(e.value)
    assert "over the 8 visible GPUs of 80 GiB" in msg and "it needs 9 GPUs" in msg and "\n" not in msg


def test_spec_config_applies_every_plan_of_the_chain(tmp_path):
    base = tiny_base(0, steps=2)
    up = finetune(base, plan=PLAN, steps=2)
    assert command.spec_config(up)["num_hidden_layers"] == 11
    assert command.spec_config(finetune(up, steps=1))["num_hidden_layers"] == 11
    ckpt = tiny.save(tiny.PRESETS["tiny-llama"], 0, tmp_path / "ckpt")
    config = command.spec_config(finetune(LocalBase(path=str(ckpt)), steps=1))
    assert config["model_type"] == "llama" and config["architectures"] == ["LlamaForCausalLM"]


# ---- one batch over ranks --------------------------------------------------------------------

def test_rank_rows_pad_and_normalise_over_the_whole_batch():
    ids = torch.arange(5 * 4).reshape(5, 4)
    labels = ids.clone()
    labels[:, 0] = dist.IGNORE
    labels[4, 1:] = dist.IGNORE  # a row with no answer tokens
    batch = {"input_ids": ids, "labels": labels}
    parts = [dist.rank_rows(batch, r, 3) for r in range(3)]
    assert [len(p["input_ids"]) for p, _ in parts] == [2, 2, 2]  # 5 rows + 1 label-free pad row
    assert torch.equal(torch.cat([p["input_ids"] for p, _ in parts])[:5], ids)
    assert (parts[2][0]["labels"][1] == dist.IGNORE).all()
    # HF counts labels[:, 1:]: 4 rows x 3 tokens; each rank divides by count / world
    assert {kw["num_items_in_batch"] for _, kw in parts} == {12 / 3}


def test_ranks_mean_loss_and_gradient_equal_the_one_process_ones():
    # What DDP/FSDP do with the ranks' losses (average the gradients, and the loop averages the
    # logged loss), checked without processes: the same numbers as one process over the batch.
    model = tiny.build(tiny.PRESETS["tiny"], 0)
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, 256, (5, 12), generator=g)
    labels = ids.clone()
    labels[:, :3] = dist.IGNORE
    labels[1, 3:9] = dist.IGNORE  # rows with different numbers of label tokens
    whole = model(input_ids=ids, labels=labels).loss
    want = torch.autograd.grad(whole, list(model.parameters()))
    world, losses, grads = 3, [], None
    for r in range(world):
        part, kw = dist.rank_rows({"input_ids": ids, "labels": labels}, r, world)
        loss = model(**part, **kw).loss
        gr = torch.autograd.grad(loss, list(model.parameters()))
        grads = gr if grads is None else [a + b for a, b in zip(grads, gr)]
        losses.append(loss.detach())
    assert torch.allclose(torch.stack(losses).mean(), whole, rtol=1e-6, atol=0)
    for a, b in zip(grads, want):
        assert torch.allclose(a / world, b, rtol=1e-4, atol=1e-7)


def test_training_builds_no_kv_cache_and_leaves_the_config_as_it_was():
    # Under FSDP's activation checkpointing a recomputed layer would append to the cache again.
    from harness.data import ByteTokenizer, load
    from harness.train import train

    model = tiny.build(tiny.PRESETS["tiny"], 0)
    assert model.config.use_cache
    spec = finetune(Scratch(), steps=3, data=DataSpec.synthetic("target", size=64, batch_size=5, eval_size=16))
    train_set, evals = load(spec.data, ByteTokenizer())
    seen = []
    train(model, spec, train_set, evals, pad_id=ByteTokenizer().pad_id,
          sink=lambda step, sd: None, progress=False,
          callbacks=(lambda info: seen.append(modes.base_model(info.model).config.use_cache),))
    assert seen == [False] * spec.steps and model.config.use_cache


# ---- the FSDP snapshot -------------------------------------------------------------------------

# Two CPU ranks shard a tiny model with FSDP1 as accelerate's FSDP path does (decoder-layer
# units, use_orig_params, non-reentrant activation checkpointing), then take a snapshot through
# dist.snapshot_state, gathering as accelerate's get_state_dict does. Rank 0 saves what it got
# and the model's effective weights from before sharding.
FSDP_WORKER = """
import functools, os, sys, torch
from accelerate import Accelerator
from accelerate.utils import DistributedType
from safetensors.torch import save_file
from torch.distributed.algorithms._checkpoint.checkpoint_wrapper import (
    CheckpointImpl, apply_activation_checkpointing, checkpoint_wrapper)
from torch.distributed.fsdp import FullyShardedDataParallel as FSDP, ShardingStrategy
from torch.distributed.fsdp.wrap import transformer_auto_wrap_policy
from harness import tiny
from harness.train import dist
from harness.train import modes
from harness.train.modes import Full, Lora

torch.distributed.init_process_group("gloo")
rank = torch.distributed.get_rank()
mode = {"full": Full(), "lora": Lora(r=4)}[sys.argv[2]]
torch.manual_seed(0)  # as the loop's set_seed before prepare: the same LoRA init on every rank
model = modes.prepare(tiny.build(tiny.PRESETS["tiny"], 0), mode)  # tied embeddings
with torch.no_grad():
    for name, p in model.named_parameters():
        if "lora_B" in name:
            p.normal_()  # a trained adapter: the merge must show
want = modes.effective_state_dict(model)
numel = sum(p.numel() for p in model.parameters())
policy = functools.partial(transformer_auto_wrap_policy,
                           transformer_layer_cls={type(modes.base_model(model).model.layers[0])})
# sync_module_states (the shipped config's) broadcasts from GPU memory only; seeded, as above,
# every rank holds the same weights anyway
wrapped = FSDP(model, auto_wrap_policy=policy, use_orig_params=True, device_id=torch.device("cpu"),
               sharding_strategy=ShardingStrategy.FULL_SHARD)
apply_activation_checkpointing(wrapped, auto_wrap_policy=policy, checkpoint_wrapper_fn=functools.partial(
    checkpoint_wrapper, checkpoint_impl=CheckpointImpl.NO_REENTRANT))
local = sum(p.numel() for p in wrapped.parameters())
assert local < numel, (local, numel)  # really sharded


class Fsdp1Accelerator:  # what snapshot_state reads of an FSDP1 Accelerator
    distributed_type, is_main_process = DistributedType.FSDP, rank == 0
    unwrap_model = Accelerator.unwrap_model

    def get_state_dict(self, model):
        # accelerate's FSDP1 branch, except offload_to_cpu: FSDP1 segfaults offloading tensors
        # that are on the CPU already (torch 2.13); on GPUs accelerate offloads them.
        from torch.distributed.fsdp import FullStateDictConfig, StateDictType
        with FSDP.state_dict_type(model, StateDictType.FULL_STATE_DICT,
                                  FullStateDictConfig(offload_to_cpu=False, rank0_only=True)):
            return model.state_dict()


got = dist.snapshot_state(Fsdp1Accelerator(), wrapped)  # every rank calls: a collective
if rank == 0:
    save_file(got, sys.argv[1] + "/got.safetensors")
    save_file(want, sys.argv[1] + "/want.safetensors")
else:
    assert got is None
torch.distributed.destroy_process_group()
# Skip interpreter teardown: gloo's threads can abort it ("terminate called without an active
# exception", SIGABRT, seen once in ~10 CI runs) after everything above has finished.
sys.stdout.flush()
os._exit(0)
"""


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["full", "lora"])
def test_fsdp_snapshot_gathers_the_effective_weights_from_shards(tmp_path, mode):
    from safetensors.torch import load_file

    (tmp_path / "worker.py").write_text(FSDP_WORKER)
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                           "--master_port", str(command._free_port()), str(tmp_path / "worker.py"),
                           str(tmp_path), mode], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    got, want = load_file(str(tmp_path / "got.safetensors")), load_file(str(tmp_path / "want.safetensors"))
    assert sorted(got) == sorted(want) and "lm_head.weight" not in got
    for name in want:
        assert got[name].dtype == torch.float32
        torch.testing.assert_close(got[name], want[name], rtol=1e-6, atol=1e-7, msg=name)


def test_snapshot_off_the_main_rank_is_none():
    from accelerate.utils import DistributedType

    class Rank1:  # DDP's other ranks hold whole weights but must not write them
        distributed_type, is_main_process = DistributedType.MULTI_CPU, False

    assert dist.snapshot_state(Rank1(), torch.nn.Linear(2, 2)) is None


# ---- the entry, in this process ----------------------------------------------------------------

def small(base=None, **kw) -> RunSpec:
    data = DataSpec.synthetic("target", size=64, batch_size=5, eval_size=16)
    return finetune(base if base is not None else Scratch(), plan=PLAN, steps=3, snapshots=(0, 2),
                    data=data, **kw)


def test_entry_in_one_process_writes_the_entry(tmp_path, capsys):
    spec = small(mode=Lora(r=4))
    (tmp_path / "spec.json").write_text(spec.model_dump_json())
    assert RunSpec.from_json(spec.model_dump_json()).key == spec.key
    assert entry.main([str(tmp_path / "spec.json"), "--cache", str(tmp_path / "c"), "--quiet"]) == 0
    assert f"run {spec.key[:12]} stored in" in capsys.readouterr().out
    hit = lookup(spec, tmp_path / "c")
    assert hit is not None and hit.steps == [0, 2, 3]


@pytest.mark.parametrize("content, message", [
    (None, "cannot read run spec"),
    ("{not json", "is not a run spec"),
    ('{"kind": "run"}', "is not a run spec"),
])
def test_entry_bad_spec_is_one_line_and_exit_2(tmp_path, capsys, content, message):
    path = tmp_path / "spec.json"
    if content is not None:
        path.write_text(content)
    assert entry.main([str(path), "--cache", str(tmp_path / "c")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err and err.startswith("uplab launch [rank 0/1]")


def test_get_or_launch_trains_in_this_process_without_gpus(tmp_path, monkeypatch):
    from harness.launch import get_or_launch

    monkeypatch.setattr(command, "visible_gpus", lambda: (0, 0.0))
    spec = small()
    first = get_or_launch(spec, tmp_path / "c", progress=False)
    assert first.path.parent == tmp_path / "c" and first.spec == spec and (first.path / MARKER).is_file()
    assert get_or_launch(spec, tmp_path / "c").path == first.path  # from the cache


def test_run_launched_failure_names_the_exit_code_and_command(tmp_path, monkeypatch):
    monkeypatch.setattr(command, "launch_argv", lambda *a, **k: [sys.executable, "-c", "raise SystemExit(3)"])
    with pytest.raises(UplabError, match=r"accelerate launch exited with 3 .*raise SystemExit\(3\)"):
        command.run_launched(small(), tmp_path / "c", 2, config=command.DDP_CONFIG)


# ---- a real launch: two and three CPU ranks over gloo ------------------------------------------

@pytest.mark.slow
@pytest.mark.skipif(torch.cuda.is_available(), reason="compares CPU ranks (gloo) with a CPU run; "
                    "with CUDA, ddp.yaml would launch GPU ranks")
@pytest.mark.parametrize("world", [2, 3])
def test_launched_run_matches_the_one_process_run_and_is_written_once(tmp_path, capfd, world):
    # A base pre-trained inside the launch (the chain goes through the ranked cache too), then a
    # LoRA fine-tune of its upscale; 5 rows a step, so the ranks' rows need a padding row.
    base = tiny_base(0, steps=3, data=DataSpec.synthetic("original", size=64, batch_size=5, eval_size=16))
    spec = small(base, mode=Lora(r=4), track=("*.6.self_attn.o_proj.weight",))
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    launched = command.run_launched(spec, tmp_path / "launched", world, config=command.DDP_CONFIG,
                                    quiet=True, env=env)
    out = capfd.readouterr().out
    one = get_or_run(spec, tmp_path / "one")

    # Written once, by the main rank, complete, with nothing left beside it.
    assert out.count("stored in") == 1 and f"[rank 0/{world}]" in out
    cache = tmp_path / "launched"
    base_entry = launched.info["base_entry"]  # keys name the computation: `world` ranks, not one
    assert launched.info["engine"]["ranks"] == world and launched.key != one.key
    assert sorted(p.name for p in cache.iterdir()) == sorted(
        [launched.key, f"{launched.key}.lock", base_entry, f"{base_entry}.lock"])
    assert sorted(p.name for p in launched.path.iterdir()) == sorted(p.name for p in one.path.iterdir())
    assert launched.metrics["processes"] == world and launched.metrics["distributed_type"] == "MULTI_CPU"
    # The same run: ranks sum gradients in another order (float32, ~1e-7 relative). Adam turns a
    # gradient at noise level into a step of up to lr whatever its sign, so a few weights may
    # differ by up to 2 x lr per step; the rest agree to 1e-6.
    for key in ("loss", "grad_norm"):
        torch.testing.assert_close(torch.tensor(launched.metrics["train"][key]),
                                   torch.tensor(one.metrics["train"][key]), rtol=1e-5, atol=0, msg=key)
    assert launched.metrics["track"].keys() == one.metrics["track"].keys()
    pretrained = 2 * base.lr * base.steps  # what the base's own steps may have moved apart
    for step in one.steps:
        a, b = launched.state_dict(step), one.state_dict(step)
        assert a.keys() == b.keys()
        diff = torch.cat([(a[k] - b[k]).abs().flatten() for k in a])
        assert diff.max() <= pretrained + 2 * spec.lr * step + 1e-6, step
        assert (diff > 1e-6).float().mean() < 0.01, step
    for e_l, e_o in zip(launched.metrics["evals"], one.metrics["evals"]):
        for name in e_o["sets"]:
            assert e_l["sets"][name]["loss"] == pytest.approx(e_o["sets"][name]["loss"], rel=1e-5)


# ---- a finished run outlives a slow commit (issue 23.3) --------------------------------------

# A rank of the launch, with the backend's default timeout shortened to 3 s (standing in for
# NCCL's 10 minutes) and the main rank's commit delayed by 10 s (hashing a 39B run's two 156 GB
# snapshots, scaled down alike): the other rank waits in a broadcast for the commit's word.
SLOW_COMMIT_RANK = """
import os, sys, time
from datetime import timedelta
import torch.distributed.distributed_c10d as c10d
c10d.default_pg_timeout = timedelta(seconds=3)
from harness.runs import cache
_commit = cache._commit

def slow_commit(*args, **kwargs):
    time.sleep(10)
    return _commit(*args, **kwargs)

cache._commit = slow_commit
from harness.launch import entry
code = entry.main(sys.argv[1:])
sys.stdout.flush()
sys.stderr.flush()
os._exit(code)  # no interpreter teardown: gloo's threads can abort it after a clean finish
"""


@pytest.mark.slow
@pytest.mark.skipif(torch.cuda.is_available(), reason="gloo ranks on the CPU (ddp.yaml launches GPU ranks with CUDA)")
def test_a_slow_commit_does_not_time_out_the_waiting_ranks(tmp_path):
    spec = small()
    (tmp_path / "rank.py").write_text(SLOW_COMMIT_RANK)
    (tmp_path / "spec.json").write_text(spec.model_dump_json())
    env = {**os.environ, "OMP_NUM_THREADS": "1", dist.TIMEOUT_ENV: "120",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    argv = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(command.DDP_CONFIG),
            "--num_processes", "2", "--num_machines", "1", "--main_process_port", str(command._free_port()),
            str(tmp_path / "rank.py"), str(tmp_path / "spec.json"), "--cache", str(tmp_path / "c"), "--quiet"]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=400)
    assert done.returncode == 0, done.stderr[-3000:]
    from harness.runs.engine import Engine

    assert lookup(spec, tmp_path / "c", Engine.here(ranks=2)) is not None  # the two ranks' entry


@pytest.mark.parametrize("value, seconds", [(None, dist.DEFAULT_TIMEOUT_S), ("", dist.DEFAULT_TIMEOUT_S),
                                            ("90", 90), ("0.5", 0.5)])
def test_collective_timeout_from_the_environment(monkeypatch, value, seconds):
    if value is None:
        monkeypatch.delenv(dist.TIMEOUT_ENV, raising=False)
    else:
        monkeypatch.setenv(dist.TIMEOUT_ENV, value)
    assert dist.timeout().total_seconds() == seconds
    assert dist.DEFAULT_TIMEOUT_S > 600  # longer than NCCL's default, which a commit outlasts


@pytest.mark.parametrize("value", ["soon", "0", "-5"])
def test_collective_timeout_refuses_nonsense(monkeypatch, value):
    monkeypatch.setenv(dist.TIMEOUT_ENV, value)
    with pytest.raises(ValueError, match=dist.TIMEOUT_ENV):
        dist.timeout()


# ---- FSDP keeps RoPE in fp32 (issue 23.4) ------------------------------------------------------

# Two gloo ranks with the launch's FSDP environment (the shipped config, bf16). The plugin is the
# one the loop's _accelerator hands accelerate on a CUDA rank (or, given none, the one accelerate
# builds from that environment), after accelerate applies bf16 to it as AcceleratorState does;
# the model is wrapped as Accelerator.prepare_model's FSDP1 branch does (decoder-layer units,
# use_orig_params, non-reentrant activation checkpointing; sync_module_states needs CUDA), and
# the loop's own _step trains it two steps with LoRA under CPU bf16 autocast.
FSDP_BF16_RANK = """
import functools, os, sys, torch
from unittest import mock
import accelerate.utils.dataclasses as adc
from accelerate import Accelerator
from accelerate.utils import FullyShardedDataParallelPlugin, InitProcessGroupKwargs
from torch.distributed.algorithms._checkpoint.checkpoint_wrapper import (
    CheckpointImpl, apply_activation_checkpointing, checkpoint_wrapper)
from torch.distributed.fsdp import FullyShardedDataParallel as FSDP
from harness import tiny
from harness.data import ByteTokenizer, DataSpec, collate, epoch_batches, load
from harness.runs import Scratch, finetune
from harness.train import dist, loop, modes
from harness.train.modes import Lora
from harness.train.optimizer import make_optimizer

# sync_module_states (the shipped config's) asks for an accelerator device when the plugin is built
adc.get_torch_accelerator_backend = lambda *a, **k: ("cuda", torch.cuda)
given = {}
with mock.patch("accelerate.Accelerator", lambda **kw: given.update(kw)), \\
        mock.patch("torch.cuda.is_available", lambda: True):
    loop._accelerator("auto")  # a CUDA rank's choice: bf16
plugin = given.get("fsdp_plugin") or FullyShardedDataParallelPlugin()
plugin.set_mixed_precision(given["mixed_precision"])  # as AcceleratorState does with it
os.environ["ACCELERATE_USE_FSDP"] = "false"  # the CPU Accelerator below: gloo data parallel only
accel = Accelerator(cpu=True, mixed_precision="bf16", kwargs_handlers=given["kwargs_handlers"])

torch.manual_seed(0)
model = modes.prepare(tiny.build(tiny.PRESETS["tiny"], 0), Lora(r=4))
before = {n: b.clone() for n, b in model.named_buffers() if n.endswith("inv_freq")}
assert before and all(b.dtype == torch.float32 for b in before.values())
plugin.set_auto_wrap_policy(model)
wrapped = FSDP(model, sharding_strategy=plugin.sharding_strategy, auto_wrap_policy=plugin.auto_wrap_policy,
               mixed_precision=plugin.mixed_precision_policy, use_orig_params=plugin.use_orig_params,
               device_id=torch.device("cpu"))
assert plugin.activation_checkpointing
apply_activation_checkpointing(wrapped, auto_wrap_policy=plugin.auto_wrap_policy, checkpoint_wrapper_fn=functools.partial(
    checkpoint_wrapper, checkpoint_impl=CheckpointImpl.NO_REENTRANT))

spec = finetune(Scratch(), mode=Lora(r=4), steps=2, data=DataSpec.synthetic("target", size=64, batch_size=4, eval_size=16))
train_set, _ = load(spec.data, ByteTokenizer())
params = [p for p in wrapped.parameters() if p.requires_grad]
run = loop._Prepared(accel, wrapped, make_optimizer(spec, params, fused=False), list(wrapped.parameters()), 0, 0)
for idx in epoch_batches(len(train_set), 4, 0, 0)[:2]:
    loss, _ = loop._step(run, spec, collate(train_set, idx, ByteTokenizer().pad_id, spec.data.train_on), 1e-3, None)
    assert torch.isfinite(loss)
after = {dist._clean(n): b for n, b in wrapped.named_buffers() if n.endswith("inv_freq")}
assert after.keys() == before.keys(), (sorted(after), sorted(before))
for name, b in after.items():
    assert b.dtype == torch.float32, f"rank {dist.rank()}: {name} is {b.dtype}"
    assert torch.equal(b, before[name]), name
torch.distributed.barrier()
torch.distributed.destroy_process_group()
sys.stdout.flush()
os._exit(0)
"""


def fsdp_launch_env() -> dict[str, str]:
    """The environment `accelerate launch` gives each rank under the shipped FSDP config."""
    from accelerate.commands.launch import _validate_launch_command, launch_command_parser
    from accelerate.utils.launch import prepare_multi_gpu_env

    argv = command.launch_argv("spec.json", "cache", 2, layer_class="MistralDecoderLayer", port=29613)
    args, _, _ = _validate_launch_command(launch_command_parser().parse_args(argv[3:]))
    env = prepare_multi_gpu_env(args)
    return {k: v for k, v in env.items() if k.startswith(("FSDP_", "ACCELERATE_"))}


@pytest.mark.slow
def test_fsdp_keeps_rope_buffers_fp32_while_the_loop_steps(tmp_path):
    launch = fsdp_launch_env()
    assert launch["ACCELERATE_USE_FSDP"] == "true" and launch["ACCELERATE_MIXED_PRECISION"] == "bf16"
    (tmp_path / "rank.py").write_text(FSDP_BF16_RANK)
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("FSDP_")}, **launch,
           "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                           "--master_port", str(command._free_port()), str(tmp_path / "rank.py")],
                          env=env, capture_output=True, text=True, timeout=400)
    assert done.returncode == 0, done.stderr[-3000:]


def test_fsdp_policy_keeps_buffers_and_reductions_fp32():
    policy = dist.mixed_precision()
    assert (policy.param_dtype, policy.reduce_dtype, policy.buffer_dtype) == (
        torch.bfloat16, torch.float32, torch.float32)


# ---- the plan built on disk once, before a launch (issue 23.2) ---------------------------------

def test_a_launch_builds_the_upscale_on_disk_once_and_passes_it(tmp_path, monkeypatch):
    base = tiny.save(tiny.PRESETS["tiny"], 0, tmp_path / "base")
    spec = small(LocalBase(path=str(base)))
    monkeypatch.setattr(command, "visible_gpus", lambda: (2, 80.0))
    monkeypatch.setattr(command, "needs_launch", lambda *a, **k: command.Placement(2, True, None))
    monkeypatch.setenv(command.GPU_LOCKS, str(tmp_path))
    seen = []
    monkeypatch.setattr(command, "run_launched", lambda spec, cache, n, **kw: seen.append(kw["built"]) or n)
    assert command.get_or_launch(spec, tmp_path / "c", progress=False) == 2
    (built,) = seen
    assert built.parent == tmp_path / "c" / ".built"
    assert R.load_config(str(built))[0]["num_hidden_layers"] == 11  # 8 layers, 3 copied
    assert command.get_or_launch(spec, tmp_path / "c", progress=False) == 2  # built once, reused
    assert seen == [built, built] and len(list((tmp_path / "c" / ".built").iterdir())) == 1
    argv = command.launch_argv("s.json", "c", 2, built=built, quiet=True)
    assert argv[-3:] == ["--built", str(built), "--quiet"]


def test_a_prebuilt_upscale_trains_the_same_run(tmp_path, monkeypatch):
    """Each rank loading the upscale built on disk trains exactly what loading the base and
    applying the plan in memory trains."""
    from harness.runs import runner

    base = tiny.save(tiny.PRESETS["tiny"], 0, tmp_path / "base")
    spec = small(LocalBase(path=str(base)))
    memory = get_or_run(spec, tmp_path / "memory")
    built = command.build_on_disk(spec, tmp_path / "disk")
    monkeypatch.setitem(runner.PREBUILT, spec.key, built)

    def no_plan(*a, **k):
        raise AssertionError("the plan was applied in memory")

    monkeypatch.setattr(runner, "apply_plan", no_plan)
    disk = get_or_run(spec, tmp_path / "disk")
    assert disk.info["roles"] == memory.info["roles"] and disk.steps == memory.steps
    assert disk.metrics["train"] == memory.metrics["train"]
    for step in memory.steps:
        a, b = disk.state_dict(step), memory.state_dict(step)
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), step


def test_entry_loads_the_upscale_it_is_given(tmp_path, monkeypatch):
    from harness.runs import runner

    base = tiny.save(tiny.PRESETS["tiny"], 0, tmp_path / "base")
    spec = small(LocalBase(path=str(base)))
    built = command.build_on_disk(spec, tmp_path / "c")
    (tmp_path / "spec.json").write_text(spec.model_dump_json())
    monkeypatch.setattr(runner, "PREBUILT", {})
    monkeypatch.setattr(runner, "apply_plan", lambda *a, **k: (_ for _ in ()).throw(AssertionError("in memory")))
    assert entry.main([str(tmp_path / "spec.json"), "--cache", str(tmp_path / "c"), "--built", str(built),
                       "--quiet"]) == 0
    assert runner.PREBUILT == {spec.key: built} and lookup(spec, tmp_path / "c") is not None
