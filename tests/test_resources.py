"""GPU memory per mode (harness.launch.resources) and `uplab resources`: the parameter count
against HF's numel, the activation bytes against what autograd really saves, the per-GPU sums
by hand, the minimum GPUs, bad CLI input, and docs/scale.md against the command's output."""

from __future__ import annotations

import math
import os
import re
import shlex
from pathlib import Path

import pytest
import torch
import transformers
from torch.autograd.graph import saved_tensors_hooks

from harness import tiny
from harness.cli import main
from harness.commands import resources as cmd
from harness.launch import resources as R
from harness.plan import load_plan
from harness.train.modes import Freeze, Full, Lora, prepare

ROOT = Path(__file__).resolve().parents[1]
MISTRAL_22B = ROOT / "examples" / "mistral-small-22b.json"
SEED_39B = ROOT / "examples" / "seed-39b.yml"
DOC = ROOT / "docs" / "scale.md"
GIB = 2**30
torch.set_num_threads(1)


def meta_numel(config: transformers.PretrainedConfig) -> int:
    with torch.device("meta"):  # the real module tree, no memory
        model = transformers.AutoModelForCausalLM.from_config(config)
    return sum(p.numel() for p in model.parameters())


# ---- parameters ----------------------------------------------------------------------------

@pytest.mark.parametrize("name", list(tiny.PRESETS))
def test_param_count_equals_hf_numel_for_every_preset(name):
    config = tiny.preset(name).hf_config()
    assert R.param_count(config.to_dict()) == meta_numel(config), name


def test_seed_22b_and_39b_sizes_match_the_model_card():
    config, _ = R.load_config(str(MISTRAL_22B))
    up, lm = R.upscale(config, load_plan(SEED_39B))
    n22, n39 = R.param_count(config), R.param_count(up)
    print(f"\n22B: {n22:,} parameters, 56 layers; 39B upscale: {n39:,} parameters, {lm.num_layers} layers")
    # hand count: 56 layers x 390,082,560 + 2 x 32768 x 6144 (embed, lm_head) + 6144 (norm)
    assert n22 == 56 * 390_082_560 + 2 * 32768 * 6144 + 6144 == 22_247_282_688
    # the seed's slices [0,41) + 2 x [19,41) + [41,55): 41 + 22 + 22 + 14 layers
    assert lm.num_layers == 99 and n39 == 99 * 390_082_560 + 2 * 32768 * 6144 + 6144
    # the card's names: "Mistral-Small 22B", "39B Upscale"
    assert round(n22 / 1e9) == 22 and round(n39 / 1e9) == 39
    assert n22 == meta_numel(transformers.MistralConfig.from_json_file(str(MISTRAL_22B)))


# ---- activations: the formula against what autograd keeps -----------------------------------

B, S = 3, 40  # 120 tokens: no hyperparameter below equals 3 or 120, so "per token" is unambiguous


def small_config(arch: str, **kw) -> transformers.PretrainedConfig:
    cls = {"mistral": transformers.MistralConfig, "llama": transformers.LlamaConfig,
           "qwen2": transformers.Qwen2Config}[arch]
    c = cls(vocab_size=300, hidden_size=96, intermediate_size=160, num_hidden_layers=4,
            num_attention_heads=6, num_key_value_heads=2, max_position_embeddings=128,
            tie_word_embeddings=False, **kw)
    c._attn_implementation = "sdpa"
    return c


def saved(model, *, autocast: bool, per_token: bool) -> int:
    """Bytes of the distinct storages autograd saves for backward in one forward (params excluded)."""
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    seen: dict[int, int] = {}

    def pack(t):
        st = t.untyped_storage()
        token_sized = t.dim() >= 1 and t.shape[0] in (B, B * S)
        weight_copy = t.dim() == 2 and t.dtype == torch.bfloat16
        if st.data_ptr() not in params and token_sized == per_token and (per_token or weight_copy):
            seen[st.data_ptr()] = st.nbytes()
        return t

    ids = torch.randint(0, 300, (B, S), generator=torch.Generator().manual_seed(0))
    with saved_tensors_hooks(pack, lambda t: t):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            model(input_ids=ids, labels=ids, use_cache=False)  # as harness.train.loop runs it
    return sum(seen.values())


MODES = {
    "full": Full(),
    "lora": Lora(r=4),
    "lora-some": Lora(r=4, targets=("q_proj", "down_proj"), layers=(2,)),
    "freeze-bottom": Freeze(layers=(0, 1)),
    "freeze-ends-train-embed": Freeze(layers=(0, 3), embeddings=False),
}


@pytest.mark.parametrize("arch", ["mistral", "llama", "qwen2"])
@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("path", ["fp32-autocast", "bf16-weights"])
def test_saved_activations_equal_the_formula(arch, mode, path):
    # One process: fp32 weights under bf16 autocast. FSDP: bf16 compute copies of every
    # parameter (adapters included), no autocast casts needed.
    bf16 = path == "bf16-weights"
    torch.manual_seed(0)
    model = prepare(transformers.AutoModelForCausalLM.from_config(small_config(arch)), MODES[mode])
    model = model.to(torch.bfloat16) if bf16 else model
    d = R.Dims.from_config(small_config(arch).to_dict())
    want = B * S * R.saved_per_token(d, R.Trainable.of(MODES[mode], 4), bf16_weights=bf16)
    assert saved(model, autocast=not bf16, per_token=True) == want


@pytest.mark.parametrize("mode", ["full", "freeze-bottom", "freeze-ends-train-embed", "lora"])
def test_autocast_weight_copies_equal_the_formula(mode):
    model = prepare(transformers.AutoModelForCausalLM.from_config(small_config("mistral")), MODES[mode])
    d = R.Dims.from_config(small_config("mistral").to_dict())
    t = R.Trainable.of(MODES[mode], 4)
    got = saved(model, autocast=True, per_token=False)  # 2-d bf16 weight copies kept for backward
    want = R.autocast_copies(d, t)
    if mode == "lora":
        # autocast's cache also holds layer 0's q/k/v adapter A copies through the forward;
        # backward does not keep them (their input needs no grad), so the hook does not see them
        want -= 2 * 4 * 3 * 96
    assert got == want


# ---- the sums, by hand ---------------------------------------------------------------------

def hand_dims() -> R.Dims:
    # h 64, i 128, 2 layers, 4 heads of 16, 2 kv heads, vocab 100, untied
    c = small_config("mistral").to_dict() | dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                                                 num_attention_heads=4, num_key_value_heads=2,
                                                 head_dim=16, vocab_size=100)
    return R.Dims.from_config(c)


def test_parameters_and_per_token_bytes_by_hand():
    d = hand_dims()
    # linears 4096 (q) + 2048 (k) + 2048 (v) + 4096 (o) + 3 x 8192 (gate, up, down); norms 2 x 64
    assert d.layer_params() == 36_864 + 128
    assert d.params() == 2 * 36_992 + 100 * 64 * 2 + 64 == 86_848
    # per layer, autocast: 30h + 4kv + 8i + 4 heads + 8; bf16 weights: 20h + 4kv + 8i + 4 heads + 8
    full = R.Trainable.of(Full(), 2)
    assert R.layer_activation(d, bf16_weights=False, base=True, lora=(), r=0) == 1920 + 128 + 1024 + 16 + 8
    assert R.layer_activation(d, bf16_weights=True, base=True, lora=(), r=0) == 1280 + 128 + 1024 + 16 + 8
    # head with a trainable root: 10h + 4V + 20 (autocast), 8h + 4V + 20 (bf16)
    assert R.saved_per_token(d, full, bf16_weights=False) == 2 * 3096 + 640 + 400 + 20
    # LoRA r 2 on all seven: adapters keep a bf16 copy of each input (2 x (6 x 64 + 128)) and
    # lora_A's output (7 x 2r); layer 0's input norm keeps nothing (its input needs no grad)
    lora = R.Trainable.of(Lora(r=2), 2)
    layer = 2 * (4 * 64 + 4) + (2 * 64 + 4 * 32 + 2 * 64 + 16) + 6 * 128 + 1024 + 28
    assert R.saved_per_token(d, lora, bf16_weights=False) == 2 * layer - (4 * 64 + 4) + (4 * 64 + 4 + 400 + 8)
    # recompute: two bf16 layer inputs, one layer's activations, the head
    assert R.recompute_per_token(d, full) == 2 * 128 + 2456 + 932


def test_one_process_and_fsdp_sums_by_hand():
    d, full = hand_dims(), R.Trainable.of(Full(), 2)
    one = R.estimate(d, full, gpus=1, fsdp=False, seq_len=8, batch=2)
    n = 86_848
    assert dict(one.parts) == {
        "weights": 4 * n, "grads": 4 * n, "adam": 8 * n,  # fp32 weights and grads, AdamW m and v
        "bf16 copies": 2 * (2 * 36_864 + 100 * 64),  # every linear and lm_head, in bf16
        "activations": 2 * 8 * (7252 + 6 * 100),  # 16 tokens x (saved + the logits' gradient)
        "overhead": 2 * GIB}
    assert one.eval_bytes == 4 * n + 8 * n + 2 * 8 * 10 * 100 + 2 * GIB
    assert one.host_bytes == 4 * n  # the fp32 model, loaded on the host before it moves
    two = R.estimate(d, full, gpus=2, fsdp=True, seq_len=8, batch=2)
    assert dict(two.parts) == {
        "weights": 4 * n // 2, "grads": 4 * n // 2, "adam": 8 * n // 2,
        "gathered": 2 * (2 * 6400 + 64) + 2 * 4 * 36_992,  # the root held, two layers in flight
        "activations": 1 * 8 * (3644 + 6 * 100),  # one sequence per rank, recomputed layers
        "overhead": 2 * GIB}
    assert two.total == max(sum(dict(two.parts).values()), two.eval_bytes)
    assert two.host_bytes == 2 * 4 * n  # each rank loads the whole fp32 model before sharding


def test_lora_under_fsdp_pays_gradients_for_its_frozen_base():
    # FSDP1 keeps a gradient for a whole flat parameter once any parameter in it trains
    d = hand_dims()
    lora = R.estimate(d, R.Trainable.of(Lora(r=2), 2), gpus=2, fsdp=True, seq_len=8, batch=2)
    assert dict(lora.parts)["grads"] == 4 * 2 * (36_992 + 2048) // 2  # both layers, adapters included
    assert dict(lora.parts)["adam"] == 8 * 2 * 2048 // 2  # only the adapters get AdamW state


# ---- minimum GPUs --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def seed():
    config, _ = R.load_config(str(MISTRAL_22B))
    up, lm = R.upscale(config, load_plan(SEED_39B))
    return R.Dims.from_config(config), R.Dims.from_config(up), lm


@pytest.mark.parametrize("kind", ["full", "lora", "freeze"])
def test_min_gpus_never_rises_with_more_memory(seed, kind):
    _, d, lm = seed
    mode = {"full": Full(), "lora": Lora(), "freeze": Freeze(layers=tuple(lm.indices("orig")))}[kind]
    t = R.Trainable.of(mode, d.layers)
    counts = []
    for gib in range(24, 400, 8):
        e = R.min_gpus(d, t, gib * GIB, seq_len=4096, batch=8)
        counts.append(e.gpus if e else math.inf)
        if e:
            assert e.fits(gib * GIB) and (e.gpus == 1 or not R.estimate(
                d, t, gpus=e.gpus - 1, fsdp=True, seq_len=4096, batch=8).fits(gib * GIB)), (kind, gib)
    assert counts == sorted(counts, reverse=True), (kind, counts)
    per_gpu = [R.estimate(d, t, gpus=g, fsdp=True, seq_len=4096, batch=8).total for g in range(1, 33)]
    assert per_gpu == sorted(per_gpu, reverse=True)


@pytest.mark.parametrize("seq_len", [4096, 512])
def test_seed_answers_quoted_in_the_doc(seed, seq_len):
    # docs/scale.md's prose: the 39B full fine-tune needs more than one node of eight 80 GB
    # cards, eight H200s hold it, and nothing at 22B/39B fits one GPU in one process
    base, up, lm = seed
    answer = {(kind, gpu): R.min_gpus(d, R.Trainable.of(mode, d.layers), R.GPUS[gpu] * GIB,
                                      seq_len=seq_len, batch=8)
              for kind, d, mode in [("22B full", base, Full()), ("39B full", up, Full()),
                                    ("39B lora", up, Lora())] for gpu in ("H100 80GB", "H200 141GB")}
    print(f"\n8 x {seq_len} tokens a step: " + ", ".join(f"{k}: {e.gpus}" for k, e in answer.items()))
    assert answer["39B full", "H100 80GB"].gpus > 8 >= answer["39B full", "H200 141GB"].gpus
    assert answer["22B full", "H100 80GB"].gpus < answer["39B full", "H100 80GB"].gpus
    assert answer["39B lora", "H100 80GB"].gpus < answer["39B full", "H100 80GB"].gpus
    assert all(e.fsdp for e in answer.values())


def test_freeze_never_needs_more_than_full(seed):
    _, d, lm = seed
    for fsdp, g in ((False, 1), (True, 4)):
        f = R.estimate(d, R.Trainable.of(Freeze(layers=tuple(lm.indices("orig"))), d.layers), gpus=g,
                       fsdp=fsdp, seq_len=1024, batch=4)
        full = R.estimate(d, R.Trainable.of(Full(), d.layers), gpus=g, fsdp=fsdp, seq_len=1024, batch=4)
        assert all(a <= b for (_, a), (_, b) in zip(f.parts, full.parts)) and f.total <= full.total


# ---- `uplab resources` -----------------------------------------------------------------------

def run_cli(capsys, *argv) -> tuple[int, str, str]:
    code = main(["resources", *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_cli_table_for_the_seed(capsys):
    code, out, err = run_cli(capsys, str(MISTRAL_22B), "--plan", str(SEED_39B))
    assert code == 0 and not err
    rows = {tuple(line.split()[:2] + line.split()[3:4]) for line in out.splitlines()}
    assert ("base", "56", "full") in rows and ("upscale", "99", "freeze") in rows
    assert "MistralDecoderLayer" in out and "× FSDP" in out


def test_cli_one_gpu_size_and_one_mode(capsys):
    code, out, _ = run_cli(capsys, "tiny", "--gpu-memory", "16", "--mode", "lora", "--batch", "4")
    modes = {line.split()[3] for line in out.splitlines() if line.split()[:2] == ["base", "10"]}
    assert code == 0 and "16 GiB" in out and modes == {"lora"}
    assert "4 × 256" in out  # the preset's max_position_embeddings caps the default sequence


@pytest.mark.parametrize("argv, message", [
    (["no/such/config.json"], "no such config file or preset"),
    (["tinyy"], "no such config file or preset"),
    (["tiny", "--mode", "freeze"], "needs the layers to freeze"),
    (["tiny", "--seq-len", "999999"], "exceeds the model's max_position_embeddings"),
    (["tiny", "--plan", str(SEED_39B)], "reaches past the source's 10 layers"),
    ([str(MISTRAL_22B), "--plan", str(SEED_39B), "--freeze", "0-3"], "drop one of them"),
    (["tiny", "--freeze", "0-99"], "outside the model's 10 layers"),
    (["tiny", "--plan", "no/such/plan.yml"], "no such config file"),
])
def test_cli_bad_input_is_one_line_and_exit_2(capsys, argv, message):
    code, out, err = run_cli(capsys, *argv)
    assert code == 2 and not out
    assert len(err.strip().splitlines()) == 1 and message in err, err


def test_cli_bad_config_files(capsys, tmp_path):
    (tmp_path / "broken.json").write_text("{not json")
    (tmp_path / "partial.json").write_text('{"model_type": "mistral", "hidden_size": 64}')
    (tmp_path / "gpt2.json").write_text('{"model_type": "gpt2", "hidden_size": 64, "intermediate_size": 1, '
                                        '"num_hidden_layers": 1, "num_attention_heads": 1, "vocab_size": 1}')
    for name, message in [("broken.json", "not a JSON config"), ("partial.json", "lacks intermediate_size"),
                          ("gpt2.json", "architecture 'gpt2' is not supported")]:
        code, _, err = run_cli(capsys, str(tmp_path / name))
        assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err


@pytest.mark.parametrize("value", ["0", "-80", "abc"])
def test_cli_non_positive_memory_is_refused_by_the_parser(capsys, value):
    with pytest.raises(SystemExit) as e:
        main(["resources", "tiny", "--gpu-memory", value])
    assert e.value.code == 2
    assert "--gpu-memory" in capsys.readouterr().err.splitlines()[-1]


# ---- docs/scale.md is this command's output ---------------------------------------------------

def test_doc_tables_are_the_commands_output():
    text = DOC.read_text()
    blocks = list(cmd.BLOCK.finditer(text))
    assert blocks, "docs/scale.md has no `<!-- uplab resources ARGS -->` blocks"
    stale = [m.group("args") for m in blocks if m.group("body") != cmd.render(shlex.split(m.group("args")))]
    assert not stale, (f"docs/scale.md is stale for `uplab resources {stale[0]}`; "
                       "run `python -m harness.commands.resources docs/scale.md`")
    named = {w for m in blocks for w in shlex.split(m.group("args"))}
    missing = sorted(set(tiny.PRESETS) - named)
    assert not missing, (f"docs/scale.md sizes no block for preset(s) {missing}; add them to the "
                         "presets block's arguments and run `python -m harness.commands.resources docs/scale.md`")
    assert re.search(r"mistral-small-22b\.json --plan examples/seed-39b\.yml", text)


# ---- host memory of loading and planning (issue 23.2) ------------------------------------------

HOST_PROBE = """
import json, re, sys, torch
torch.set_num_threads(1)
import transformers  # noqa: F401  (imports are not the model's memory)
from harness.runs.runner import apply_plan, load_base
from harness.runs.spec import LocalBase
from harness.strategies import contiguous

def status(field):
    return int(re.search(field + r":\\s+(\\d+) kB", open("/proc/self/status").read()).group(1)) * 1024

# Linux: writing 5 to clear_refs resets the peak (VmHWM) to the current RSS, so an earlier
# transient peak (an import's) cannot hide what loading and planning add
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")
before = status("VmRSS")
model = load_base(LocalBase(path=sys.argv[1]))
up, _ = apply_plan(model, contiguous(0, 16, num_layers=16, copies=1))
print(json.dumps({"grown": status("VmHWM") - before, "base": sum(p.numel() for p in model.parameters()),
                  "up": sum(p.numel() for p in up.parameters())}))
"""


@pytest.mark.slow
@pytest.mark.skipif(not os.access("/proc/self/clear_refs", os.W_OK), reason="needs Linux's resettable peak RSS")
def test_host_peak_of_load_and_plan_is_the_estimate(tmp_path):
    """The `small` preset from disk (as a full-scale base is read), every layer duplicated in
    memory: the process's peak RSS grows by what resources.host_load counts (base and upscale,
    fp32) within a stated tolerance. Measured (torch 2.13, transformers 5): 1.46x the estimate,
    the rest being safetensors' mapped pages and transformers' loading; before upscale_model
    initialised on the meta device, a random-initialised third copy made it 2.12x."""
    import json
    import subprocess
    import sys

    from harness import tiny

    base = tiny.save(tiny.PRESETS["small"], 0, tmp_path / "small")
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, "-c", HOST_PROBE, str(base)], env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["up"] > 1.8 * seen["base"]  # every decoder layer doubled
    estimate = R.host_load(seen["up"], seen["base"])
    assert seen["grown"] <= 1.75 * estimate, (seen["grown"] / estimate, seen)


def test_the_seed_39b_built_on_the_meta_device_has_the_estimated_parameters(seed):
    """The shapes the estimate counts are the model transformers builds: the seed's 39B
    upscale of Mistral-Small, created on the meta device (no memory), parameter for parameter."""
    import transformers
    from accelerate import init_empty_weights

    _, up, _ = seed
    config, _ = R.load_config(str(MISTRAL_22B))
    grown, _ = R.upscale(config, load_plan(SEED_39B))
    cfg = transformers.AutoConfig.for_model(**{k: v for k, v in grown.items() if k != "architectures"})
    with init_empty_weights():
        model = transformers.AutoModelForCausalLM.from_config(cfg)
    assert all(p.is_meta for p in model.parameters())
    assert sum(p.numel() for p in model.parameters()) == up.params()
    assert 38e9 < up.params() < 40e9
    # with the plan applied in memory on each of 8 ranks: base and upscale, fp32, per rank
    lora, base_params = R.Trainable.of(Lora(), up.layers), R.Dims.from_config(config).params()
    adapters = sum(R.lora_params(up, lora, j) for j in range(up.layers))
    place = R.estimate(up, lora, gpus=8, fsdp=True, seq_len=512, batch=8, base_params=base_params)
    assert place.host_bytes == 8 * 4 * (up.params() + adapters + base_params)
