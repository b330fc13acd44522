"""The uplab pytest plugin (fixtures/plugin.py), tested from the outside with `pytester`:
options and defaults, markers and skip reasons, parameter ids, the claim fixture."""

from __future__ import annotations

import json
import os
from pathlib import Path

import harness.stats
import pytest

# Imported here, not first inside a pytester run: an in-process run forgets the modules it
# imported, and re-importing torch's or peft's extension modules in one process crashes it.
import fixtures.claim  # noqa: F401
import harness.claims.family  # noqa: F401
import harness.claims.lab  # noqa: F401
import harness.claims.measures  # noqa: F401
import transformers.modeling_utils  # noqa: F401  (pulls torch._dynamo, whose op library registers once)

from fixtures import devices
from fixtures.params import scale_grid, scale_marks, scales, strategy_params

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[1]
POSITIVE = [0.31, 0.22, 0.41, 0.18, 0.27, 0.35, 0.25, 0.3]  # 8 seeds, all > 0: supported
NEGATIVE = [-e for e in POSITIVE]  # CI wholly below 0: refuted for direction "greater"
MIXED = [0.3, -0.2, 0.1, -0.4, 0.2, -0.1, 0.05, -0.3]  # straddles 0: inconclusive


@pytest.fixture
def uplab(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """A pytester project that loads the plugin like the repository's root conftest does."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    monkeypatch.setattr(devices, "cuda_devices", lambda: (0, "torch.cuda.is_available() is False"))
    pytester.makeconftest('pytest_plugins = ["fixtures.plugin"]\n')
    return pytester


def claims_json(pytester: pytest.Pytester, report_dir: str = "reports/out") -> dict:
    return json.loads((pytester.path / report_dir / "claims.json").read_text())


# A toy protocol: two claims with a primary each (one with an exploratory case), measured by toy
# measures that return the effects the test chose (CASE_EFFECTS, keyed by "<claim>/<case>").
TOY_REGISTRY = """
schema: uplab.registry/1
registered: "2026-11-29"
alpha: 0.05
claims:
  a_claim:
    card: "the card says A"
    statement: A holds.
    module: toy
    construction: "a toy claim of this test: its effects are given, not measured"
    primary: {case: one, metric: effect a, unit: nats, direction: greater, test: superiority,
              sesoi: 0.1, sesoi_why: "a tenth of a nat is the least that matters"}
    secondary: [{case: two, why: "another layout"}]
    scales: [tiny, small]
    notes: {tiny: "an argument, not numbers"}
  b_claim:
    card: "the card says B"
    statement: B holds.
    module: toy
    construction: "a toy claim of this test: its effects are given, not measured"
    primary: {case: one, metric: effect b, unit: nats, direction: less, test: superiority,
              sesoi: 0.1, sesoi_why: "a tenth of a nat is the least that matters"}
    scales: [tiny]
"""

TOY_CONFTEST = """
import json, os
from pathlib import Path
from harness.claims.measured import Measured
from harness.claims.measures import MEASURES

pytest_plugins = ["fixtures.plugin"]

def _toy(claim_id):
    def measure(lab, seeds, case):
        if os.environ.get("TOY_CALLS"):
            with open(os.environ["TOY_CALLS"], "a") as f:
                f.write(f"{claim_id}/{case}\\n")
        effects = json.loads(Path(os.environ["TOY_EFFECTS"]).read_text())[f"{claim_id}/{case}"]
        if effects == "not applicable":
            from harness.claims import NotApplicable
            raise NotApplicable("needs what this machine lacks")
        return Measured(effects=effects[:len(seeds)], seeds=seeds[:len(effects)], runs=[f"run-{claim_id}"])
    return measure

MEASURES.update({"a_claim": _toy("a_claim"), "b_claim": _toy("b_claim")})
"""

TOY_TESTS = """
import pytest
from fixtures.params import claim_params

REGISTRY = "registry.yaml"

@pytest.mark.parametrize("scale, case", claim_params("a_claim", ["tiny"], registry=REGISTRY))
def test_a(scale, case, claim):
    result = claim.decide("a_claim", case)
    assert result.holds, result.message

@pytest.mark.parametrize("scale, case", claim_params("b_claim", ["tiny"], registry=REGISTRY))
def test_b(scale, case, claim):
    result = claim.decide("b_claim", case)
    assert result.holds, result.message
"""


@pytest.fixture
def toy(uplab: pytest.Pytester, monkeypatch: pytest.MonkeyPatch):
    """A project deciding the toy protocol; call it with {"<claim>/<case>": effects}."""
    uplab.makeconftest(TOY_CONFTEST)
    (uplab.path / "registry.yaml").write_text(TOY_REGISTRY)
    uplab.makepyfile(TOY_TESTS)

    def run(effects: dict, *args: str) -> pytest.RunResult:
        path = uplab.path / "effects.json"
        path.write_text(json.dumps(effects))
        monkeypatch.setenv("TOY_EFFECTS", str(path))
        return uplab.runpytest("--registry", "registry.yaml", "--seeds", "8", "-rxXs", *args)

    return run


POS8, NEG8 = POSITIVE, NEGATIVE
HOLM_ONLY = [1, 1, 1, 1, 1, 1, -0.9, -0.8]  # p = 0.039 alone: supported; Holm over 2: not


# -- options ------------------------------------------------------------------------------------

def test_defaults(uplab):
    uplab.makepyfile(f"""
        from pathlib import Path
        def test_defaults(scale, seeds, alpha, run_cache, uplab_options):
            root = Path({str(uplab.path)!r})
            assert scale == "tiny"
            assert seeds == list(range(12))
            assert alpha == 0.05
            assert run_cache == root / ".uplab-cache" and run_cache.is_dir()
            assert uplab_options.report_dir == root / "reports" / "out"
            assert uplab_options.base_model is None and uplab_options.checkpoints is None
    """)
    uplab.runpytest().assert_outcomes(passed=1)


def test_options_given(uplab, monkeypatch):
    monkeypatch.setattr(devices, "cuda_devices", lambda: (1, "torch sees 1"))
    (uplab.path / "base").mkdir()
    (uplab.path / "data.txt").write_text("x")
    uplab.makepyfile(f"""
        from pathlib import Path
        def test_given(scale, seeds, alpha, run_cache, uplab_options):
            root = Path({str(uplab.path)!r})
            assert scale == "small"
            assert seeds == [0, 1, 2]
            assert alpha == 0.01
            assert run_cache == root / "rc"
            assert uplab_options.report_dir == root / "rd"
            assert uplab_options.base_model == root / "base"
            assert uplab_options.train_data == root / "data.txt"
    """)
    result = uplab.runpytest("--scale", "small", "--seeds", "3", "--alpha", "0.01",
                             "--run-cache", "rc", "--report-dir", "rd",
                             "--base-model", "base", "--train-data", "data.txt")
    result.assert_outcomes(passed=1)


def test_real_defaults_to_the_seeds_its_21_claims_need(uplab):
    (uplab.path / "base").mkdir()
    uplab.makepyfile("""
        def test_real(uplab_options):
            assert uplab_options.seed_list == list(range(10))
    """)
    uplab.runpytest("--scale", "real", "--base-model", "base").assert_outcomes(passed=1)
    uplab.runpytest("--scale", "real", "--base-model", "base", "--seeds", "3").assert_outcomes(failed=1)


def test_header_says_how_the_run_was_configured(uplab):
    uplab.makepyfile("def test_x(): pass")
    result = uplab.runpytest("--seeds", "10", "--alpha", "0.01")
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines([
        "uplab: scale tiny (parametrized tests: every scale), seeds 0..9 (--seeds 10), alpha 0.01, "
        f"run cache {uplab.path / '.uplab-cache'}, report {uplab.path / 'reports' / 'out'}"])


def test_help_lists_options_in_one_group(uplab):
    text = " ".join(uplab.runpytest("--help").stdout.str().split())
    assert "uplab: claims about upscaled LLMs:" in text
    for option in ("--scale={tiny,small,full,real}", "--seeds=N", "--run-cache=DIR", "--report-dir=DIR",
                   "--alpha=ALPHA", "--base-model=PATH", "--train-data=PATH", "--checkpoints=MANIFEST",
                   "--profile={auto,cpu,gpu}", "--recipe={default,finer}"):
        assert option in text, option
    for default in ("(default: tiny)", "(default: 12; at real 10", "(default: .uplab-cache under the rootdir)",
                    "(default: reports/out under the rootdir)", "(default: 0.05)"):
        assert default in text, default


@pytest.mark.parametrize("args, message", [
    (["--seeds", "0"], "*--seeds*expected a whole number >= 1, got 0*"),
    (["--seeds", "1"], "*--seeds*got 1: every claim compares seeds*or --checkpoints MANIFEST for one run*"),
    (["--seeds", "1000000"], "*--seeds*got 1000000, at most 64: each seed trains its own runs*"),
    (["--checkpoints", "loop"], "*--checkpoints loop: cannot resolve the path (a symlink loop?)*"),
    (["--registry", "loop"], "*--registry loop: cannot resolve the path (a symlink loop?)*"),
    (["--registry", "latin.yml"], "*--registry *latin.yml: not UTF-8 text (byte 13)*"),
    (["--registry", "list.yml"], "*--registry: *list.yml: claims.a: expected a mapping of fields, got list*"),
    (["--alpha", "1.5"], "*--alpha*expected a number in (0, 1)*"),
    (["--scale", "huge"], "*--scale*invalid choice*"),
    (["--base-model", "missing"], "*--base-model missing: no such file or directory; give*"),
    (["--train-data", "missing"], "*--train-data missing: no such file or directory; give*"),
    (["--checkpoints", "."], "*--checkpoints .: not a file; give the path of a checkpoint manifest*"),
    (["--report-dir", "afile"], "*--report-dir *afile: exists and is not a directory*"),
], ids=["seeds", "one-seed", "a-million-seeds", "checkpoints-loop", "registry-loop", "registry-latin1",
        "registry-list", "alpha", "scale", "base-model", "train-data", "checkpoints", "report-dir"])
def test_bad_option_values_are_usage_errors(uplab, args, message):
    (uplab.path / "afile").write_text("")
    (uplab.path / "loop").symlink_to("loop")
    (uplab.path / "latin.yml").write_bytes(b"claims:\n  caf\xe9: {}\n")
    (uplab.path / "list.yml").write_text("claims:\n  a: [1, 2]\n")
    uplab.makepyfile("def test_x(): pass")
    result = uplab.runpytest(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])


def test_a_read_only_run_cache_is_a_usage_error(uplab, monkeypatch):
    """Simulated (tests run as root, which chmod does not stop): the probe file cannot be made."""
    import errno
    import tempfile

    real = tempfile.TemporaryFile

    def read_only(*args, dir=None, **kwargs):
        if dir is not None and "ro-cache" in str(dir):
            raise OSError(errno.EROFS, "Read-only file system")
        return real(*args, dir=dir, **kwargs)

    monkeypatch.setattr(tempfile, "TemporaryFile", read_only)
    (uplab.path / "ro-cache").mkdir()
    uplab.makepyfile("def test_x(): pass")
    result = uplab.runpytest("--run-cache", "ro-cache")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--run-cache *ro-cache: not writable (Read-only file system); give a writable*"])


# -- markers and skips --------------------------------------------------------------------------

def test_markers_registered(uplab):
    uplab.runpytest("--markers").stdout.fnmatch_lines([
        "@pytest.mark.gpu(count=1): needs `count` CUDA devices*",
        "@pytest.mark.full: needs real checkpoints: --base-model and --train-data, or --checkpoints*",
    ])


GPU_TESTS = """
import pytest

@pytest.mark.gpu
def test_one_gpu(): pass

@pytest.mark.gpu(count=2)
def test_two_gpus(): pass
"""


def test_gpu_skips_with_reason_without_cuda(uplab):
    uplab.makepyfile(GPU_TESTS)
    result = uplab.runpytest("-rs")
    result.assert_outcomes(skipped=2)
    result.stdout.fnmatch_lines([
        "SKIPPED*gpu: needs 1 CUDA device, found 0 (torch.cuda.is_available() is False)",
        "SKIPPED*gpu: needs 2 CUDA devices, found 0 (torch.cuda.is_available() is False)",
    ])


def test_gpu_runs_with_enough_devices(uplab, monkeypatch):
    monkeypatch.setattr(devices, "cuda_devices", lambda: (1, "torch sees 1"))
    uplab.makepyfile(GPU_TESTS)
    result = uplab.runpytest("-rs")
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(["SKIPPED*gpu: needs 2 CUDA devices, found 1*"])


def test_cuda_devices_reads_torch(monkeypatch):
    torch = pytest.importorskip("torch")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert devices.cuda_devices() == (0, "torch.cuda.is_available() is False")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert devices.cuda_devices()[0] == 2


def test_skipped_claim_tests_are_in_the_report_with_their_reason(toy, uplab):
    result = toy({"a_claim/one": POS8, "a_claim/two": "not applicable", "b_claim/one": NEG8}, "-n", "2")
    result.assert_outcomes(passed=2, skipped=1)
    assert claims_json(uplab)["skipped"] == [
        {"reason": "needs what this machine lacks", "tests": ["test_skipped_claim_tests_are_in_the_report_with_their_reason.py::test_a[tiny-two]"]}]


@pytest.mark.parametrize("given, reason", [
    ([], "full scale needs --base-model PATH and --train-data PATH, or --checkpoints MANIFEST"),
    (["--base-model", "base"], "full scale needs --train-data PATH (given --base-model), or --checkpoints MANIFEST"),
    (["--train-data", "data"], "full scale needs --base-model PATH (given --train-data), or --checkpoints MANIFEST"),
], ids=["nothing", "base-only", "data-only"])
def test_full_skips_naming_the_missing_option(uplab, given, reason):
    (uplab.path / "base").mkdir()
    (uplab.path / "data").mkdir()
    uplab.makepyfile("import pytest\n@pytest.mark.full\ndef test_full(): pass\n")
    result = uplab.runpytest("-rs", *given)
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines([f"SKIPPED*{reason}"])


@pytest.mark.parametrize("given", [["--checkpoints", "manifest.yaml"],
                                   ["--base-model", "base", "--train-data", "data"]],
                         ids=["checkpoints", "base-and-data"])
def test_full_runs_with_its_inputs(uplab, given):
    (uplab.path / "base").mkdir()
    (uplab.path / "data").mkdir()
    write_tiny_manifest(uplab.path)
    uplab.makepyfile("import pytest\n@pytest.mark.full\ndef test_full(): pass\n")
    uplab.runpytest(*given).assert_outcomes(passed=1)


def write_tiny_manifest(folder):
    """A valid manifest over untrained tiny checkpoints (8 layers, upscaled to 14)."""
    from harness.claims.settings import plan_for
    from harness import tiny

    import torch

    from harness.runs.runner import apply_plan

    plan = plan_for("contiguous", 8)
    base = tiny.build(tiny.preset("tiny8"), 0)
    base.save_pretrained(folder / "m-base")
    up, _ = apply_plan(base, plan)  # the manifest's plan is checked against these weights
    up.save_pretrained(folder / "m-up")
    with torch.no_grad():  # a snapshot that moved: the startup check refuses one that did not
        for p in up.parameters():
            p.add_(0.01)
    up.save_pretrained(folder / "m-epoch1")
    (folder / "m-plan.yml").write_text(plan.text)
    (folder / "manifest.yaml").write_text(
        "base: m-base\nupscale: m-plan.yml\nupscaled: m-up\nsnapshots: [{path: m-epoch1, epoch: 1}]\n")


def test_bad_manifest_is_a_usage_error(uplab):
    write_tiny_manifest(uplab.path)
    (uplab.path / "manifest.yaml").write_text("base: m-base\nupscale: m-plan.yml\nupscaled: m-base\n"
                                              "snapshots: [{path: m-epoch1}]\n")
    uplab.makepyfile("def test_x(): pass")
    result = uplab.runpytest("--checkpoints", "manifest.yaml")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--checkpoints: manifest *upscaled has 8 layers but the upscale config "
                                 "on the 8-layer base gives 14; give matching checkpoints"])


# -- parameter ids and scale selection ----------------------------------------------------------

PARAM_TESTS = """
import pytest
from fixtures.params import strategy_params

@pytest.mark.parametrize("scale, strategy", strategy_params(["contiguous", "interleaved"]))
def test_x(scale, strategy):
    pass

def test_at_option_scale(scale):
    pass
"""


def test_param_ids_read_scale_then_case(uplab):
    uplab.makepyfile(PARAM_TESTS)
    result = uplab.runpytest("--collect-only", "-q")
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines([
        "*::test_x[[]tiny-contiguous[]]", "*::test_x[[]tiny-interleaved[]]",
        "*::test_x[[]small-contiguous[]]", "*::test_x[[]small-interleaved[]]",
        "*::test_x[[]full-contiguous[]]", "*::test_x[[]full-interleaved[]]",
        "*::test_at_option_scale",
    ])


@pytest.mark.parametrize("args, selected", [
    (["-m", "not gpu"], ["test_x[tiny-contiguous]", "test_x[tiny-interleaved]", "test_x[real-contiguous]",
                         "test_x[real-interleaved]", "test_at_option_scale"]),
    (["-m", "gpu and not full"], ["test_x[small-contiguous]", "test_x[small-interleaved]"]),
    (["-m", "full"], ["test_x[full-contiguous]", "test_x[full-interleaved]"]),
    (["--scale", "small"], ["test_x[small-contiguous]", "test_x[small-interleaved]", "test_at_option_scale"]),
    (["--scale", "small", "-m", "gpu"], ["test_x[small-contiguous]", "test_x[small-interleaved]",
                                          "test_at_option_scale"]),
], ids=["not-gpu", "gpu-not-full", "full", "scale-small", "scale-small-gpu"])
def test_marks_and_scale_option_select(uplab, args, selected):
    uplab.makepyfile(PARAM_TESTS)
    result = uplab.runpytest("--collect-only", "-q", *args)
    got = sorted(line.split("::", 1)[1] for line in result.outlines if "::" in line)
    assert got == sorted(selected)


def test_param_helpers():
    assert [p.id for p in scales()] == ["tiny", "small", "full", "real"]
    assert "real" in [m.name for m in scale_marks("real")]
    assert [m.name for m in scale_marks("full")] == ["gpu", "full"]
    assert scale_marks("tiny") == ()
    grid = scale_grid({"one": 1, "five": 5}, ["tiny", "small"])
    assert [(p.id, p.values) for p in grid] == [
        ("tiny-one", ("tiny", 1)), ("tiny-five", ("tiny", 5)),
        ("small-one", ("small", 1)), ("small-five", ("small", 5))]
    assert [m.name for m in grid[2].marks] == ["gpu"]
    assert [p.id for p in strategy_params(["every"], ["full"])] == ["full-every"]
    with pytest.raises(ValueError, match="unknown scale 'huge'"):
        scales(["huge"])
    with pytest.raises(ValueError, match="no cases"):
        scale_grid([])


# -- the claim fixture: protocol, Holm family, outcomes ------------------------------------------

def test_supported_primary_passes_with_the_holm_decision(toy, uplab):
    result = toy({"a_claim/one": POS8, "a_claim/two": NEG8, "b_claim/one": NEG8})
    result.assert_outcomes(passed=3)  # the exploratory case passes whatever its verdict
    claims = {(c["id"], c["case"]): c for c in claims_json(uplab)["claims"]}
    a, b, explore = claims["a_claim", "one"], claims["b_claim", "one"], claims["a_claim", "two"]
    assert a["primary"] and b["primary"] and not explore["primary"]
    assert a["family"]["size"] == 2 and a["family"]["claims"] == ["a_claim", "b_claim"]
    assert a["decision"]["p_adj"] == pytest.approx(2 * a["decision"]["p"])  # Holm, both at the minimum p
    assert explore["decision"]["p_adj"] == explore["decision"]["p"] and explore["decision"]["verdict"] == "refuted"
    assert a["protocol"]["test"] == "superiority" and a["protocol"]["sesoi"] == 0.1
    assert a["protocol"]["sesoi_why"].startswith("a tenth") and a["reason"] == "an argument, not numbers"
    # the support bound at Holm's level for a (alpha p / p_adj = 0.025), the other at alpha
    assert (a["decision"]["level_low"], a["decision"]["level_high"]) == pytest.approx((0.025, 0.05))
    assert a["decision"]["bound"] == a["decision"]["ci_low"] and a["decision"]["decided_by"] == "lower bound"
    assert a["expected"] is None and a["outcome"].startswith("passed")


def test_the_asserted_verdict_is_the_holm_one(toy):
    result = toy({"a_claim/one": HOLM_ONLY, "a_claim/two": POS8, "b_claim/one": [-e for e in HOLM_ONLY]})
    # each p = 0.039 < 0.05 alone, but Holm across the two primaries gives 0.078: inconclusive
    result.assert_outcomes(passed=1, xfailed=2)
    result.stdout.fnmatch_lines(["XFAIL*test_a[[]tiny-one[]]*inconclusive after Holm*minimum detectable effect*power at the sesoi*"])


def test_refuted_primary_fails_with_the_claim_and_its_numbers(toy):
    result = toy({"a_claim/one": NEG8, "a_claim/two": POS8, "b_claim/one": NEG8})
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines([
        "*claim a_claim[[]one[]] at tiny: REFUTED — A holds.",
        "*effect -0.2863 nats, lower bound -0.3* (one-sided 95%), upper bound -0.2* (one-sided 97.5%), decided by: upper bound, n = 8 runs (seeds)",
        "*support test p = 1, Holm p_adj = 1; refutation test p = 0.003906, Holm p_adj = 0.007812",
        "*protocol: superiority test, direction greater, sesoi 0.1 (a tenth of a nat is the least that matters)",
        "*per-seed effects (seeds 0, 1, 2, 3, 4, 5, 6, 7): -0.31, -0.22, -0.41, -0.18, -0.27, -0.35, -0.25, -0.3",
    ])
    assert "record it" not in result.stdout.str()  # no advice for the project's maintainers


def _record_baseline(uplab, verdicts: dict) -> None:
    from harness.claims import baseline

    doc = claims_json(uplab)
    for c in doc["claims"]:
        c["decision"]["verdict"] = verdicts.get((c["id"], c["case"]), c["decision"]["verdict"])
    baseline.write(baseline.record(doc, registry=_toy_registry(uplab)), uplab.path / "hypotheses" / "expected")


def _toy_registry(uplab):
    from harness.claims.registry import load

    return load(uplab.path / "registry.yaml")


def test_a_recorded_refutation_is_a_strict_xfail_and_a_changed_verdict_fails(toy, uplab):
    toy({"a_claim/one": NEG8, "a_claim/two": POS8, "b_claim/one": NEG8}).assert_outcomes(passed=2, failed=1)
    _record_baseline(uplab, {})
    # the same results again: the known refutation is an xfail, nothing fails
    result = toy({"a_claim/one": NEG8, "a_claim/two": POS8, "b_claim/one": NEG8})
    result.assert_outcomes(passed=2, xfailed=1)
    result.stdout.fnmatch_lines(["XFAIL*test_a[[]tiny-one[]]*refuted, as recorded in the baseline*"])
    # a refutation that turns into support fails (strict), and so does a changed exploratory verdict
    result = toy({"a_claim/one": POS8, "a_claim/two": NEG8, "b_claim/one": NEG8})
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines(["*verdict changed: recorded 'refuted', now 'supported'*hypotheses*expected*tiny.json*re-record*"])
    c = {(c["id"], c["case"]): c for c in claims_json(uplab)["claims"]}["a_claim", "one"]
    assert c["expected"] == "refuted" and c["baseline"]["moved"] is True and c["baseline"]["commit"]
    # --no-baseline: raw outcomes again
    toy({"a_claim/one": NEG8, "a_claim/two": POS8, "b_claim/one": NEG8}, "--no-baseline").assert_outcomes(passed=2, failed=1)


def test_a_claim_not_registered_at_a_scale_skips_saying_so(toy, uplab, monkeypatch):
    monkeypatch.setattr(devices, "cuda_devices", lambda: (1, "torch sees 1"))
    uplab.makepyfile(test_small="""
        import pytest
        from fixtures.params import claim_params

        @pytest.mark.parametrize("scale, case", claim_params("b_claim", ["small"], registry="registry.yaml"))
        def test_b_small(scale, case, claim):
            result = claim.decide("b_claim", case)
            assert result.holds, result.message
    """)
    result = toy({"a_claim/one": POS8, "a_claim/two": POS8, "b_claim/one": NEG8}, "test_small.py")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["SKIPPED*b_claim is not registered at small; the registry runs it at tiny"])


def test_a_failing_claim_that_is_not_asserted_is_an_error(toy, uplab):
    uplab.makepyfile(test_silent="""
        import pytest
        from fixtures.params import claim_params

        @pytest.mark.parametrize("scale, case", claim_params("a_claim", ["tiny"], registry="registry.yaml"))
        def test_unasserted(scale, case, claim):
            claim.decide("a_claim", case)
    """)
    result = toy({"a_claim/one": NEG8, "a_claim/two": POS8, "b_claim/one": NEG8}, "test_silent.py")
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(["*a claim that does not hold was decided but not asserted*"])


def test_claim_fixture_without_a_decision_is_an_error(uplab):
    uplab.makepyfile("def test_silent(claim):\n    pass\n")
    result = uplab.runpytest()
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*test_silent asked for the `claim` fixture but recorded no claim*"])


# -- the report at the end of the session --------------------------------------------------------

def test_report_written_and_summarised(toy, uplab):
    result = toy({"a_claim/one": POS8, "a_claim/two": POS8, "b_claim/one": NEG8})
    result.assert_outcomes(passed=3)
    out = uplab.path / "reports" / "out"
    result.stdout.fnmatch_lines([
        "*= uplab claims =*",
        "2 primary results (Holm within each scale, alpha 0.05): 2 supported, 0 smaller, 0 refuted, 0 inconclusive, 0 not in regime; 1 exploratory; 0 verdict(s) differ from the baseline",
        f"claim report: {out / 'index.html'} (data: {out / 'claims.json'})",
    ])
    doc = claims_json(uplab)
    assert [c["id"] for c in doc["claims"]] == ["a_claim", "a_claim", "b_claim"]
    assert all(c["plots"]["per-seed effects"] for c in doc["claims"])
    prov = doc["provenance"]
    assert prov["seeds"] == list(range(8))
    assert prov["runs"] == ["run-a_claim", "run-b_claim"]
    assert prov["packages"]["numpy"] and "torch" in prov["packages"]
    assert prov["devices"] and prov["wall_time_s"] > 0


def test_no_claims_no_report(uplab):
    uplab.makepyfile("def test_plain(): pass\n")
    result = uplab.runpytest()
    result.assert_outcomes(passed=1)
    assert "uplab claims" not in result.stdout.str()
    assert not (uplab.path / "reports").exists()


def test_report_dir_option(toy, uplab):
    toy({"a_claim/one": POS8, "a_claim/two": POS8, "b_claim/one": NEG8},
        "--report-dir", "elsewhere/r1").assert_outcomes(passed=3)
    assert len(claims_json(uplab, "elsewhere/r1")["claims"]) == 3
    assert not (uplab.path / "reports" / "out").exists()


def test_a_primary_is_measured_once_per_process(toy, uplab, monkeypatch):
    """Each primary is needed by its own test and by every other primary's Holm family: one
    process measures it once (harness.claims.measures.measure_once)."""
    calls = uplab.path / "calls.txt"
    monkeypatch.setenv("TOY_CALLS", str(calls))
    toy({"a_claim/one": POS8, "a_claim/two": POS8, "b_claim/one": NEG8}).assert_outcomes(passed=3)
    assert sorted(calls.read_text().split()) == ["a_claim/one", "a_claim/two", "b_claim/one"]


def test_xdist_workers_share_one_holm_family_and_one_report(toy, uplab):
    pytest.importorskip("xdist")
    result = toy({"a_claim/one": POS8, "a_claim/two": MIXED, "b_claim/one": NEG8},
                 "-n", "2", "-p", "no:hypothesispytest", "-p", "no:benchmark")
    result.assert_outcomes(passed=3)
    assert result.stdout.str().count("= uplab claims =") == 1  # the controller summarises, once
    doc = claims_json(uplab)
    primaries = [c for c in doc["claims"] if c["primary"]]
    expected = harness.stats.holm([c["decision"]["p"] for c in primaries])
    assert [c["decision"]["p_adj"] for c in primaries] == pytest.approx(expected)
    assert {c["family"]["size"] for c in primaries} == {2}
    assert doc["provenance"]["xdist_workers"] == 2
    assert not list((uplab.path / ".uplab-cache" / ".family").glob("*/*"))  # the store is removed


def test_cases_needing_the_longest_runs_are_scheduled_first_in_order():
    """upscale_room's deep-base case trains bases of its own (18 layers at tiny), the suite's
    longest, and the long-run and conflicting-target pairs follow: collected first, in FIRST's
    order, so one xdist worker starts the deep bases while another trains the shared ones."""
    import subprocess
    import sys

    from harness.claims.measures import FIRST

    done = subprocess.run([sys.executable, "-m", "pytest", "hypotheses/", "--collect-only", "-q", "-p", "no:xdist",
                           "-p", "no:cacheprovider", "--scale", "tiny"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    ids = [line for line in done.stdout.splitlines() if "::" in line]
    first = [f"test_{claim}[tiny-{case}]" for claim, cases in FIRST.items() for case in cases]
    assert first and [i.split("::")[-1] for i in ids[:len(first)]] == first
    assert first[0] == "test_upscale_room[tiny-contiguous-vs-deep-base]"
    assert len(ids) > 2 * len(first)  # the rest follow in their own order


def _cmdline_config(args, **option):
    from types import SimpleNamespace

    return SimpleNamespace(
        args=args, rootpath=ROOT, getini=lambda name: "2",
        option=SimpleNamespace(**{"numprocesses": None, "maxschedchunk": None, **option}),
        pluginmanager=SimpleNamespace(hasplugin=lambda name: True))


def test_hypotheses_run_on_the_configured_workers_one_test_at_a_time():
    """`pytest hypotheses/` gets the project's 2 workers and xdist hands tests out one at a time
    (by default each worker would take an eighth of the suite up front, and the one training
    the longest runs would hold its share while the other idles); a choice on the command line
    is kept, and other paths are left alone."""
    from fixtures.plugin import pytest_cmdline_main

    config = _cmdline_config(["hypotheses/"])
    pytest_cmdline_main(config)
    assert (config.option.numprocesses, config.option.maxschedchunk) == (2, 1)
    chosen = _cmdline_config(["hypotheses/"], maxschedchunk=4)
    pytest_cmdline_main(chosen)
    assert chosen.option.maxschedchunk == 4
    elsewhere = _cmdline_config(["tests/test_plugin.py"])
    pytest_cmdline_main(elsewhere)
    assert (elsewhere.option.numprocesses, elsewhere.option.maxschedchunk) == (None, None)


def test_the_whole_test_suite_runs_on_the_configured_workers():
    """`pytest tests/` (the README's test command) spreads its files over the project's workers;
    one file, a -n on the command line, or tests/ beside other paths are left alone."""
    from fixtures.plugin import pytest_cmdline_main

    suite = _cmdline_config(["tests/"])
    pytest_cmdline_main(suite)
    assert (suite.option.numprocesses, suite.option.maxschedchunk) == (2, None)
    for args, option in ((["tests/test_plugin.py"], {}), (["tests/"], {"numprocesses": 0}),
                         (["tests/", "hypotheses/"], {})):
        config = _cmdline_config(args, **option)
        pytest_cmdline_main(config)
        assert config.option.numprocesses == option.get("numprocesses"), args


def test_hypotheses_with_workers_given_still_run_one_test_at_a_time():
    """Issue 23.7: the nightly's `-n "$gpus"` keeps one-test-at-a-time scheduling; -n 0 (no
    workers) and an explicit --maxschedchunk are left alone."""
    from fixtures.plugin import pytest_cmdline_main

    given = _cmdline_config(["hypotheses/"], numprocesses=4)
    pytest_cmdline_main(given)
    assert (given.option.numprocesses, given.option.maxschedchunk) == (4, 1)
    serial = _cmdline_config(["hypotheses/"], numprocesses=0)
    pytest_cmdline_main(serial)
    assert (serial.option.numprocesses, serial.option.maxschedchunk) == (0, None)
    chosen = _cmdline_config(["hypotheses/"], numprocesses=4, maxschedchunk=3)
    pytest_cmdline_main(chosen)
    assert chosen.option.maxschedchunk == 3
