"""The uplab pytest plugin (fixtures/plugin.py), tested from the outside with `pytester`:
options and defaults, markers and skip reasons, parameter ids, the claim fixture."""

from __future__ import annotations

import json
import os
from pathlib import Path

import harness.stats
import pytest

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


CLAIM_TEST = """
import pytest
from fixtures.params import strategy_params

@pytest.mark.parametrize("scale, strategy", strategy_params(["contiguous"], ["tiny"]))
def test_dups(scale, strategy, claim):
    claim.check(id="dups_more_responsive", statement="duplicates change more than originals",
                method="log(mean rel change dup / orig)", effects={effects},
                direction="greater"{extra})
"""


# -- options ------------------------------------------------------------------------------------

def test_defaults(uplab):
    uplab.makepyfile(f"""
        from pathlib import Path
        def test_defaults(scale, seeds, alpha, run_cache, uplab_options):
            root = Path({str(uplab.path)!r})
            assert scale == "tiny"
            assert seeds == list(range(8))
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
    for option in ("--scale={tiny,small,full}", "--seeds=N", "--run-cache=DIR", "--report-dir=DIR",
                   "--alpha=ALPHA", "--base-model=PATH", "--train-data=PATH", "--checkpoints=MANIFEST"):
        assert option in text, option
    for default in ("(default: tiny)", "(default: 8)", "(default: .uplab-cache under the rootdir)",
                    "(default: reports/out under the rootdir)", "(default: 0.05)"):
        assert default in text, default


@pytest.mark.parametrize("args, message", [
    (["--seeds", "0"], "*--seeds*expected a whole number >= 1, got 0*"),
    (["--alpha", "1.5"], "*--alpha*expected a number in (0, 1)*"),
    (["--scale", "huge"], "*--scale*invalid choice*"),
    (["--base-model", "missing"], "*--base-model missing: no such file or directory; give*"),
    (["--train-data", "missing"], "*--train-data missing: no such file or directory; give*"),
    (["--checkpoints", "."], "*--checkpoints .: not a file; give the path of a checkpoint manifest*"),
    (["--report-dir", "afile"], "*--report-dir *afile: exists and is not a directory*"),
], ids=["seeds", "alpha", "scale", "base-model", "train-data", "checkpoints", "report-dir"])
def test_bad_option_values_are_usage_errors(uplab, args, message):
    (uplab.path / "afile").write_text("")
    uplab.makepyfile("def test_x(): pass")
    result = uplab.runpytest(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])


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


def test_skipped_claim_tests_are_in_the_report_with_their_reason(uplab):
    uplab.makepyfile(CLAIM_TEST.format(effects=[0.3, 0.2, 0.4, 0.1, 0.3, 0.2, 0.25, 0.35], extra="") + '''
@pytest.mark.parametrize("scale", ["small"])
def test_later(scale, claim):
    pytest.skip("needs what this machine lacks")

@pytest.mark.skip(reason="not a claim test")
def test_plain():
    pass
''')
    result = uplab.runpytest("-n", "2")
    result.assert_outcomes(passed=1, skipped=2)
    assert claims_json(uplab)["skipped"] == [
        {"reason": "needs what this machine lacks", "tests": ["test_skipped_claim_tests_are_in_the_report_with_their_reason.py::test_later[small]"]}]


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
    from harness.claims.lab import plan_for
    from harness import tiny

    tiny.save(tiny.preset("tiny"), 0, folder / "m-base")
    for name in ("m-up", "m-epoch1"):
        tiny.save(tiny.preset("tiny", num_layers=14), 0, folder / name)
    (folder / "m-plan.yml").write_text(plan_for("contiguous", 8).text)
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
    (["-m", "not gpu"], ["test_x[tiny-contiguous]", "test_x[tiny-interleaved]", "test_at_option_scale"]),
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
    assert [p.id for p in scales()] == ["tiny", "small", "full"]
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


# -- the claim fixture --------------------------------------------------------------------------

def test_claim_passes_and_returns_the_decision(uplab):
    uplab.makepyfile(CLAIM_TEST.format(effects=POSITIVE, extra="") + """
def test_returns(claim):
    d = claim.check(id="c", statement="s", method="m", effects=[1, 2, 3, 4, 5, 6, 7, 8],
                    direction="greater")
    assert d.verdict == "supported" and d.n == 8 and claim.scale == "tiny"
""")
    uplab.runpytest().assert_outcomes(passed=2)


def test_claim_failure_message_shows_the_numbers(uplab):
    uplab.makepyfile(CLAIM_TEST.format(effects=NEGATIVE, extra=""))
    result = uplab.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "E*claim dups_more_responsive[[]contiguous[]] at scale tiny: verdict 'refuted', expected 'supported'",
        "E*effect -0.2863, CI [[]-0.3*, -0.2*[]], p = 1, n = 8, direction greater, SESOI 0, alpha 0.05",
        "E*test: one-sample sign-flip*",
        "E*per-seed effects (seeds 0, 1, 2, 3, 4, 5, 6, 7): -0.31, -0.22, -0.41, -0.18, -0.27, -0.35, -0.25, -0.3",
        "E*if 'refuted' is now the expected verdict at tiny, record it: expected={'tiny': 'refuted'}*",
    ])


def test_expected_other_than_supported_needs_a_reason(uplab):
    uplab.makepyfile(CLAIM_TEST.format(effects=NEGATIVE, extra=', expected="refuted"'))
    result = uplab.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "E*ValueError: claim dups_more_responsive at scale tiny: expected='refuted' needs reason=*"])
    assert not (uplab.path / "reports" / "out").exists()  # nothing recorded for a malformed claim


def test_expected_with_reason_per_scale_passes_and_is_reported(uplab):
    extra = (', expected={"tiny": "refuted"}, '
             'reason={"tiny": "tiny models have too few layers: effect -0.29 over 8 seeds"}')
    uplab.makepyfile(CLAIM_TEST.format(effects=NEGATIVE, extra=extra))
    uplab.runpytest().assert_outcomes(passed=1)
    (claim,) = claims_json(uplab)["claims"]
    assert (claim["expected"], claim["decision"]["verdict"]) == ("refuted", "refuted")
    assert claim["reason"].startswith("tiny models have too few layers")


def test_claim_records_param_scale_case_and_plots(uplab, monkeypatch):
    monkeypatch.setattr(devices, "cuda_devices", lambda: (1, "torch sees 1"))
    uplab.makepyfile(f"""
        import matplotlib.pyplot as plt
        import pytest
        from fixtures.params import strategy_params
        from harness.plots import effects_strip, png_bytes

        @pytest.mark.parametrize("scale, strategy", strategy_params(["contiguous"], ["tiny", "small"]))
        def test_dups(scale, strategy, claim):
            fig = plt.figure()
            plt.plot([0, 1], [1, 0])
            claim.check(id="dups", statement="s", method="m", effects={POSITIVE}, direction="greater",
                        plots={{"pyplot": fig, "bytes": png_bytes(effects_strip([1.0, 2.0]))}},
                        runs=["abc123"])
            assert claim.scale == scale and not plt.get_fignums()  # handed-over figures are closed

        def test_bad_plot(claim):
            claim.check(id="bad", statement="s", method="m", effects={POSITIVE}, direction="greater",
                        plots={{"heatmap": "heatmap.png"}})
    """)
    result = uplab.runpytest()
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["E*TypeError: claim bad: plot 'heatmap': a plot must be a matplotlib Figure or PNG bytes, got str"])
    claims = claims_json(uplab)["claims"]
    assert [(c["scale"], c["case"]) for c in claims] == [("tiny", "contiguous"), ("small", "contiguous")]
    assert all(sorted(c["plots"]) == ["bytes", "per-seed effects", "pyplot"] for c in claims)
    assert all(c["runs"] == ["abc123"] and c["seeds"] == list(range(8)) for c in claims)


def test_check_decision_records_a_within_run_decision(uplab):
    uplab.makepyfile("""
        from harness.stats import within_run

        def test_within(claim, alpha):
            d = within_run([0.5, 0.4, 0.7, 0.6, 0.3, 0.8, 0.45, 0.55], direction="greater", alpha=alpha)
            assert claim.check_decision(d, id="first_layers_outliers", statement="s",
                                        method="robust z per layer") is d

        def test_alpha_mismatch(claim):
            d = within_run([0.5, 0.4, 0.7, 0.6], direction="greater", alpha=0.1)
            claim.check_decision(d, id="x", statement="s", method="m")
    """)
    result = uplab.runpytest()
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["E*ValueError: claim x: decision made at alpha=0.1, but this run uses alpha=0.05*"])
    (claim,) = claims_json(uplab)["claims"]
    assert claim["decision"]["within_run"] is True and claim["effects"] is None
    assert "within one run" in (uplab.path / "reports" / "out" / "index.html").read_text()


def test_claim_fixture_without_a_check_is_an_error(uplab):
    uplab.makepyfile("def test_silent(claim):\n    pass\n")
    result = uplab.runpytest()
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*test_silent asked for the `claim` fixture but recorded no claim*"])


# -- the report at the end of the session --------------------------------------------------------

TWO_CLAIMS = f"""
def test_a(claim):
    claim.check(id="a_claim", statement="A holds", method="effect a", effects={POSITIVE},
                direction="greater", runs=["run-a1", "run-a2"])

def test_b(claim):
    claim.check(id="b_claim", statement="B holds", method="effect b", effects={NEGATIVE},
                direction="less", runs=["run-b1"])
"""


def test_report_written_and_summarised(uplab):
    uplab.makepyfile(TWO_CLAIMS)
    result = uplab.runpytest("--seeds", "8")
    result.assert_outcomes(passed=2)
    out = uplab.path / "reports" / "out"
    result.stdout.fnmatch_lines([
        "*= uplab claims =*",
        "claim*scale*expected*verdict*Holm*effect*CI*p*p_adj*n",
        "a_claim*tiny*supported*supported*supported*+0.286*0.0039*0.0078*8",
        "b_claim*tiny*supported*supported*supported*-0.286*0.0039*0.0078*8",
        "2 claim results: 2 as expected, 0 not; p_adj and Holm verdicts are adjusted across all 2, alpha 0.05",
        f"claim report: {out / 'index.html'} (data: {out / 'claims.json'})",
    ])
    doc = claims_json(uplab)
    assert [c["id"] for c in doc["claims"]] == ["a_claim", "b_claim"]
    assert all(c["adjusted"]["p_adj"] == pytest.approx(2 * c["decision"]["p"]) for c in doc["claims"])
    assert all(c["plots"]["per-seed effects"] for c in doc["claims"])
    prov = doc["provenance"]
    assert prov["seeds"] == list(range(8))
    assert prov["runs"] == ["run-a1", "run-a2", "run-b1"]
    assert prov["packages"]["numpy"] and "torch" in prov["packages"]
    assert prov["devices"] and prov["wall_time_s"] > 0
    assert (out / "index.html").read_text().count('<tr data-claim="') == 2


def test_failed_claims_are_still_reported(uplab):
    uplab.makepyfile(CLAIM_TEST.format(effects=NEGATIVE, extra=""))
    result = uplab.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*1 claim result: 0 as expected, 1 not*"])
    (claim,) = claims_json(uplab)["claims"]
    assert (claim["expected"], claim["decision"]["verdict"]) == ("supported", "refuted")


def test_no_claims_no_report(uplab):
    uplab.makepyfile("def test_plain(): pass\n")
    result = uplab.runpytest()
    result.assert_outcomes(passed=1)
    assert "uplab claims" not in result.stdout.str()
    assert not (uplab.path / "reports").exists()


def test_report_dir_option(uplab):
    uplab.makepyfile(TWO_CLAIMS)
    uplab.runpytest("--report-dir", "elsewhere/r1").assert_outcomes(passed=2)
    assert len(claims_json(uplab, "elsewhere/r1")["claims"]) == 2
    assert not (uplab.path / "reports" / "out").exists()


XDIST_TESTS = f"""
import os
import pytest

@pytest.mark.parametrize("k", range(6))
def test_claim(k, claim):
    effects = {MIXED} if k == 5 else [e * (k + 1) for e in {POSITIVE}]
    claim.check(id=f"claim_{{k}}", statement="worker " + os.environ["PYTEST_XDIST_WORKER"],
                method="m", effects=effects, direction="greater")
"""


def test_xdist_workers_merge_into_one_report(uplab):
    pytest.importorskip("xdist")
    uplab.makepyfile(XDIST_TESTS)
    result = uplab.runpytest("-n", "2", "-p", "no:hypothesispytest", "-p", "no:benchmark")
    result.assert_outcomes(passed=5, failed=1)  # claim_5's mixed effects are inconclusive
    assert result.stdout.str().count("= uplab claims =") == 1  # the controller summarises, once
    doc = claims_json(uplab)
    claims = doc["claims"]
    assert [c["id"] for c in claims] == [f"claim_{k}" for k in range(6)]
    assert {c["statement"] for c in claims} == {"worker gw0", "worker gw1"}  # both contributed
    # Holm across all six claims of the report, not per worker.
    expected = harness.stats.holm([c["decision"]["p"] for c in claims])
    assert [c["adjusted"]["p_adj"] for c in claims] == pytest.approx(expected)
    assert doc["provenance"]["xdist_workers"] == 2
