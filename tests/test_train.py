"""The training loop: determinism, modes (full / LoRA on zeroed modules / freeze), schedule,
snapshots, tracking. Small specs (a few steps, 64 examples) keep every test around a second."""

import copy
import os
import math

import pytest
import torch

from harness import tiny
from harness.data import ByteTokenizer, DataSpec, load
from harness.errors import UplabError
from harness.runs import Scratch, make
from harness.runs.runner import execute
from harness.train import Freeze, Lora, effective_state_dict, lr_at, plan_steps, set_seed, train
from harness.train import modes

torch.set_num_threads(1)
TOK = ByteTokenizer()
ZEROED = (4, 5)  # layers whose o_proj/down_proj the fixture zeroes, as a passthrough duplicate


def small_spec(**kw):
    fields = dict(base=Scratch(seed=0), steps=4, lr=3e-3, snapshots=(0,),
                  data=DataSpec.synthetic("original", size=64, batch_size=16, eval_size=16))
    return make(**{**fields, **kw})


def run(spec, model=None, callbacks=()):
    """Train directly (no cache): returns (snapshots by step, metrics)."""
    model = model if model is not None else tiny.build(tiny.PRESETS["tiny8"], 0)
    train_set, evals = load(spec.data, TOK)
    snaps = {}
    metrics = train(model, spec, train_set, evals, pad_id=TOK.pad_id, progress=False,
                    sink=lambda step, sd: snaps.__setitem__(step, sd), callbacks=callbacks)
    return snaps, metrics


@pytest.fixture
def zeroed_model():
    """A tiny model whose layers ZEROED start as identities, like an upscale's duplicates."""
    model = tiny.build(tiny.PRESETS["tiny8"], 0)
    with torch.no_grad():
        for i in ZEROED:
            model.model.layers[i].self_attn.o_proj.weight.zero_()
            model.model.layers[i].mlp.down_proj.weight.zero_()
    return model


def test_same_spec_gives_bit_identical_weights(tmp_path):
    spec = small_spec(steps=6, snapshots=(0, 3))
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    ma = execute(spec, spec.base, tmp_path / "a")
    mb = execute(spec, spec.base, tmp_path / "b")
    assert ma["train"]["loss"] == mb["train"]["loss"]
    from safetensors.torch import load_file
    for step in (0, 3, 6):
        a = load_file(tmp_path / "a" / f"step-{step:06d}.safetensors")
        b = load_file(tmp_path / "b" / f"step-{step:06d}.safetensors")
        assert a.keys() == b.keys()
        assert all(torch.equal(a[k], b[k]) for k in a), f"step {step} differs"
    seeded = small_spec(steps=6, snapshots=(0, 3), seed=1)
    other = execute(seeded, seeded.base, (tmp_path / "c").mkdir() or tmp_path / "c")
    assert other["train"]["loss"] != ma["train"]["loss"]  # the seed reaches the data order


def test_full_mode_trains_everything_and_loss_falls():
    snaps, m = run(small_spec(steps=12))
    first, last = snaps[0], snaps[12]
    assert "lm_head.weight" not in last  # tied to embed_tokens, saved once
    assert all(not torch.equal(first[k], last[k]) for k in first)
    assert m["train"]["loss"][-1] < m["train"]["loss"][0]
    assert len(m["train"]["loss"]) == 12 and m["evals"][0]["step"] == 0
    assert m["trainable_params"] == m["params"]


def test_freeze_listed_layers_and_embeddings():
    snaps, m = run(small_spec(mode=Freeze(layers=(0, 1, 2, 3))))
    first, last = snaps[0], snaps[4]
    for k in first:
        frozen = any(f"layers.{i}." in k for i in range(4)) or not k.startswith("model.layers.")
        assert torch.equal(first[k], last[k]) == frozen, k
    snaps, _ = run(small_spec(mode=Freeze(layers=(0,), embeddings=False)))
    assert not torch.equal(snaps[0]["model.embed_tokens.weight"], snaps[4]["model.embed_tokens.weight"])


@pytest.mark.parametrize("mode, match", [
    (Freeze(layers=tuple(range(8))), "no parameter to train"),
    (Freeze(layers=(8,)), r"outside the model's 8 layers"),
    (Lora(targets=("wq",)), "not modules of"),
])
def test_bad_modes_are_clear_errors(mode, match):
    with pytest.raises(UplabError, match=match):
        run(small_spec(mode=mode))


def test_lora_on_zeroed_modules_gets_gradient_through_B_first(zeroed_model):
    """W = 0 and B = 0: B moves on step 1 (its gradient is g·(Ax)ᵀ), A only from step 2; the
    duplicate's q/k/v and gate/up adapters get no gradient until o_proj/down_proj are non-zero."""
    seen = {}

    def watch(info):
        layers = modes._lora_layers(info.model)
        pick = lambda name, part: getattr(layers[name], part)["default"].weight.detach().cpu().clone()
        seen[info.step] = {f"{n}.{part}": pick(n, part) for n in layers for part in ("lora_A", "lora_B")}

    spec = small_spec(mode=Lora(r=4, alpha=8), steps=3)
    set_seed(spec.seed)  # the loop seeds the same way, so this is the run's initial A
    init = modes._lora_layers(modes.prepare(copy.deepcopy(zeroed_model), spec.mode))
    snaps, _ = run(spec, zeroed_model, callbacks=(watch,))
    lay = lambda i, mod: f"model.layers.{i}.{mod}"
    o, q, down = lay(4, "self_attn.o_proj"), lay(4, "self_attn.q_proj"), lay(4, "mlp.down_proj")
    assert seen[1][f"{o}.lora_B"].abs().sum() > 0 and seen[1][f"{down}.lora_B"].abs().sum() > 0
    a0 = init[o].lora_A["default"].weight
    assert torch.equal(seen[1][f"{o}.lora_A"], a0) and not torch.equal(seen[2][f"{o}.lora_A"], a0)
    assert torch.equal(seen[1][f"{q}.lora_B"], torch.zeros_like(seen[1][f"{q}.lora_B"]))
    assert seen[2][f"{q}.lora_B"].abs().sum() > 0  # o_proj's product is no longer zero
    assert seen[1][f"{lay(0, 'self_attn.q_proj')}.lora_B"].abs().sum() > 0  # a normal layer: at once
    # the snapshot of a duplicate's o_proj is exactly s·B·A: rank <= r, zero at step 0
    w0, w3 = snaps[0][f"{o}.weight"], snaps[3][f"{o}.weight"]
    assert torch.equal(w0, torch.zeros_like(w0)) and w3.abs().sum() > 0
    assert torch.linalg.matrix_rank(w3) <= 4


def test_effective_weights_equal_peft_merge(zeroed_model):
    model = modes.prepare(zeroed_model, Lora(r=4, alpha=8, layers=(3, 4, 5)))
    with torch.no_grad():  # give B non-zero values, as after training
        for layer in modes._lora_layers(model).values():
            layer.lora_B["default"].weight.normal_()
    eff = effective_state_dict(model)
    merged = copy.deepcopy(model).merge_and_unload().state_dict()
    assert set(eff) == set(merged) - {"lm_head.weight"}
    assert all(torch.allclose(eff[k], merged[k], atol=1e-6) for k in eff)
    assert not torch.equal(eff["model.layers.4.self_attn.o_proj.weight"], torch.zeros(64, 64))
    assert torch.equal(eff["model.layers.0.self_attn.o_proj.weight"],
                       model.get_base_model().model.layers[0].self_attn.o_proj.weight)  # not adapted


def test_tracking_logs_norms_every_step(zeroed_model):
    spec = small_spec(steps=5, track=("*.o_proj.weight", "*.down_proj.weight"))
    snaps, m = run(spec, zeroed_model)
    tr = m["track"]
    assert len(tr) == 16
    o4 = tr["model.layers.4.self_attn.o_proj.weight"]
    assert len(o4["weight_norm"]) == 6 and len(o4["grad_norm"]) == 5
    assert o4["weight_norm"][0] == 0.0 and o4["grad_norm"][0] > 0  # zeroed, yet it gets gradient
    assert math.isclose(o4["weight_norm"][-1], float(snaps[5]["model.layers.4.self_attn.o_proj.weight"].norm()),
                        rel_tol=1e-6)
    with pytest.raises(UplabError, match="match no tensor"):
        run(small_spec(track=("*.wq",)))


def test_schedule_warmup_cosine_constant():
    kw = dict(schedule="cosine", warmup=0.1, min_lr=0.1)
    lrs = [lr_at(s, 100, 1.0, **kw) for s in range(100)]
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0) and lrs[10] == pytest.approx(1.0)
    assert lrs[-1] == pytest.approx(0.1, abs=1e-3) and all(a >= b for a, b in zip(lrs[10:], lrs[11:]))
    assert {lr_at(s, 100, 2.0, schedule="constant", warmup=0.0, min_lr=0.1) for s in range(100)} == {2.0}


def test_snapshots_at_chosen_steps_and_epoch_ends():
    spec = small_spec(epochs=3, steps=None, snapshots=(1,))  # 64 examples / 16 = 4 steps an epoch
    assert plan_steps(spec, 64) == (4, 12, [1, 4, 8, 12])
    assert plan_steps(small_spec(steps=10, snapshot_epochs=False), 64) == (4, 10, [0, 10])
    with pytest.raises(UplabError, match="after the run's last step"):
        plan_steps(small_spec(steps=4, snapshots=(9,)), 64)
    _, m = run(small_spec(steps=9))
    assert m["snapshots"] == [0, 4, 8, 9] and [e["epoch"] for e in m["evals"]] == [0, 1, 2, 2.25]


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (bf16 autocast path)")
def test_bf16_on_gpu_keeps_fp32_snapshots():
    snaps, m = run(small_spec(steps=4))
    assert m["mixed_precision"] == "bf16" and m["device"].startswith("cuda")
    assert all(t.dtype == torch.float32 and t.device.type == "cpu" for t in snaps[4].values())
    assert m["mfu"] is None or 0 < m["mfu"] < 1
    _, m32 = run(small_spec(steps=2, precision="fp32"))  # a second precision in the same process
    assert m32["mixed_precision"] == "no" and m32["device"].startswith("cuda")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU refusal of bf16")
def test_bf16_without_gpu_is_a_clear_error():
    with pytest.raises(UplabError, match="needs a CUDA device"):
        run(small_spec(precision="bf16"))


def test_sgd_arm_trains_with_sgd_and_its_own_hash(tmp_path):
    """optimizer="sgd" is SGD with momentum: one step moves the weights by lr times the clipped
    gradient (global norm <= 1), where AdamW's first step moves every element by ~lr. A spec at
    the default optimizer keeps the hash it had before the field existed."""
    from harness.runs import get_or_run
    from harness.train.optimizer import SGD_MOMENTUM, make_optimizer

    def one_step(optimizer):
        spec = make(base=Scratch(seed=0), steps=1, optimizer=optimizer, lr=1e-2, snapshots=(0,),
                    data=DataSpec.synthetic("original", size=16, batch_size=16, eval_size=16))
        run = get_or_run(spec, tmp_path)
        w0, w1 = run.state_dict(0), run.state_dict(1)
        return spec, float(torch.cat([(w1[k] - w0[k]).flatten() for k in w0]).norm())

    sgd, sgd_step = one_step("sgd")
    adamw, adamw_step = one_step("adamw")
    assert 0 < sgd_step <= 1e-2 * (1 + 1e-4)  # lr x a gradient clipped to norm 1
    assert adamw_step > 20 * 1e-2  # ~lr per element over ~41k elements
    opt = make_optimizer(sgd, [torch.nn.Parameter(torch.zeros(2))], fused=False)
    assert isinstance(opt, torch.optim.SGD) and opt.defaults["momentum"] == SGD_MOMENTUM
    assert "optimizer" not in adamw.canonical() and '"optimizer":"sgd"' in sgd.canonical()


def test_set_seed_on_a_gpu_machine_asks_for_deterministic_cuda(monkeypatch):
    """Issue 23.7: on a GPU the one seed also fixes cuBLAS's workspace and turns on torch's
    deterministic algorithms (warn_only: ops without one warn); the CPU is left alone."""
    from harness.train import loop

    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    before = (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled())
    try:
        torch.use_deterministic_algorithms(False)
        monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
        loop.set_seed(0)
        assert not torch.are_deterministic_algorithms_enabled() and "CUBLAS_WORKSPACE_CONFIG" not in os.environ
        monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
        loop.set_seed(0)
        assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
        assert torch.are_deterministic_algorithms_enabled() and torch.is_deterministic_algorithms_warn_only_enabled()
    finally:
        torch.use_deterministic_algorithms(before[0], warn_only=before[1])


def test_pinned_workers_get_the_cublas_workspace_before_cuda(monkeypatch):
    import types

    from fixtures import gpus

    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    gpus.pytest_configure(types.SimpleNamespace(workerinput={gpus.WORKER_KEY: "1", gpus.NODE_KEY: "0,1"}))
    try:
        assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
        assert (os.environ["CUDA_VISIBLE_DEVICES"], os.environ[gpus.NODE_ENV]) == ("1", "0,1")
    finally:
        gpus.pytest_unconfigure(None)
        os.environ.pop(gpus.NODE_ENV, None)


@pytest.mark.parametrize("stacked", [False, True], ids=["loop", "stacked"])
def test_a_kind_scored_at_its_ends_trains_the_same_bits(tmp_path, stacked):
    """scores="ends" scores the held-out sets at step 0 and the last step only: the snapshots
    between are written, and the weights, training log and end scores are those of the run
    scored at every snapshot (the per-seed loop and stacked seeds); a score between is one error."""
    from harness.runs import get_or_run, get_or_run_many

    def runs(scores):
        specs = [make(base=Scratch(seed=s), seed=s, steps=6, snapshots=(0, 2, 4), scores=scores, lr=1e-2,
                      data=DataSpec.synthetic("original", size=64, batch_size=16, eval_size=16)) for s in (0, 1)]
        return get_or_run_many(specs, tmp_path) if stacked else [get_or_run(specs[0], tmp_path)]

    for every, ends in zip(runs("snapshots"), runs("ends")):
        assert ends.key != every.key and ends.steps == every.steps == [0, 2, 4, 6]
        assert [e["step"] for e in ends.metrics["evals"]] == [0, 6]
        assert [e["step"] for e in every.metrics["evals"]] == [0, 2, 4, 6]
        assert ends.scores(0) == every.scores(0) and ends.scores() == every.scores()
        assert ends.metrics["train"] == every.metrics["train"]
        for step in ends.steps:
            a, b = ends.state_dict(step), every.state_dict(step)
            assert all(torch.equal(a[k], b[k]) for k in a)
        with pytest.raises(UplabError, match="at step 0 and its end only .*not at step 2"):
            ends.scores(2)
    assert '"scores"' not in every.spec.canonical()  # the default keeps the key it had before the field
