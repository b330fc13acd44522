"""The GitHub workflows (.github/workflows/) parse and run what the README says, so the README,
.ci/run and GitHub CI cannot drift apart; the nightly runs the GPU scale and compares verdicts
with a flag `uplab report` has."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from harness import cli

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = ROOT / ".github" / "workflows"


def readme_commands() -> list[str]:
    """The bash blocks under README's "The two commands": [run the tests, run the main job]."""
    text = (ROOT / "README.md").read_text()
    section = text.split("\n## The two commands\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```bash\n(.*?)```", section, flags=re.DOTALL)
    assert len(blocks) == 2, blocks
    return [b.strip() for b in blocks]


def workflow(name: str) -> dict:
    data = yaml.safe_load((WORKFLOWS / name).read_text())
    data["on"] = data.pop(True, data.get("on"))  # YAML 1.1 reads the key `on` as true
    return data


def run_lines(job: dict) -> list[str]:
    return [line.strip() for step in job["steps"] for line in step.get("run", "").splitlines()]


def uses(job: dict) -> list[str]:
    return [step["uses"].split("@")[0] for step in job["steps"] if "uses" in step]


def test_ci_runs_the_readme_commands_verbatim():
    wf = workflow("ci.yml")
    assert {"push", "pull_request"} <= set(wf["on"])
    tests, main_job = readme_commands()
    assert tests.endswith("pytest tests/") and main_job.endswith("pytest hypotheses/")
    assert tests in run_lines(wf["jobs"]["tests"])
    assert main_job in run_lines(wf["jobs"]["claims"])


def test_ci_installs_the_cpu_torch_the_readme_pins_into_its_venv():
    wf = workflow("ci.yml")
    pin = re.search(r"torch==[\w.]+", readme_commands()[0]).group(0)
    for job in wf["jobs"].values():
        lines = run_lines(job)
        cpu = [i for i, line in enumerate(lines) if "download.pytorch.org/whl/cpu" in line]
        readme = [i for i, line in enumerate(lines) if line in readme_commands()]
        assert cpu and readme and cpu[0] < readme[0], lines  # first, so the README's pip keeps it
        assert pin in lines[cpu[0]] and ".venv/bin/pip" in lines[cpu[0]]


def test_ci_caches_runs_and_uploads_the_report_always():
    job = workflow("ci.yml")["jobs"]["claims"]
    cache = next(s for s in job["steps"] if s.get("uses", "").startswith("actions/cache@"))
    assert cache["with"]["path"] == ".uplab-cache"
    assert all(f"'{d}/**'" in cache["with"]["key"] for d in ("harness", "hypotheses", "fixtures"))
    assert "restore-keys" not in cache["with"]  # a stale entry must not be restored
    upload = next(s for s in job["steps"] if s.get("uses", "").startswith("actions/upload-artifact@"))
    assert upload["with"]["path"] == "reports/out" and upload["if"] == "always()"


def test_ci_browser_test_gets_a_browser():
    job = workflow("ci.yml")["jobs"]["tests"]
    assert "browser-actions/setup-chrome" in uses(job)
    step = next(s for s in job["steps"] if "pytest tests/" in s.get("run", ""))
    assert step["env"]["UPLAB_CHROMIUM"] == "${{ steps.chrome.outputs.chrome-path }}"


def test_nightly_runs_the_gpu_scale_and_compares_verdicts(capsys):
    wf = workflow("nightly-gpu.yml")
    assert "schedule" in wf["on"] and "workflow_dispatch" in wf["on"]
    (job,) = wf["jobs"].values()
    assert job["runs-on"] == ["self-hosted", "gpu"]
    lines = run_lines(job)
    assert "nvidia-smi" in lines
    assert not any("download.pytorch.org/whl/cpu" in line or "torch==" in line for line in lines)
    suite = [line for line in lines if line.startswith("pytest hypotheses/")]
    assert suite[0] == ('pytest hypotheses/ -m gpu --scale small --no-baseline --report-dir reports/gpu -n "$gpus" '
                        '--junitxml reports/gpu/junit.xml || true')
    assert ".ci/junit-count reports/gpu/junit.xml --errors-only" in lines  # errors fail it, verdicts not
    compare = [line for line in lines if line.startswith(".ci/nightly-compare ")]
    assert compare and compare[0].startswith(".ci/nightly-compare .nightly/claims.json reports/gpu/claims.json")
    assert wf["env"]["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
    assert "actions/cache/restore" in uses(job) and "actions/cache/save" in uses(job)
    restore = next(s for s in job["steps"] if s.get("uses", "").startswith("actions/cache/restore@"))
    save = next(s for s in job["steps"] if s.get("uses", "").startswith("actions/cache/save@"))
    assert restore["with"]["path"] == save["with"]["path"] == ".nightly/claims.json"
    assert save["with"]["key"].startswith(restore["with"]["restore-keys"])
    upload = next(s for s in job["steps"] if s.get("uses", "").startswith("actions/upload-artifact@"))
    assert upload["with"]["path"] == "reports/gpu" and upload["if"] == "always()"
    # The real scale's verdicts go through the same comparison
    assert any(line.startswith(".ci/nightly-compare .nightly/real-claims.json reports/real/claims.json")
               for line in lines)
    # ... and the exploratory second recipe runs beside it, its verdicts set beside the default's
    assert ("pytest hypotheses/ --scale real --profile gpu --recipe finer --report-dir reports/real-finer "
            "--junitxml reports/real-finer/junit.xml || true") in lines
    assert ".ci/junit-count reports/real-finer/junit.xml --errors-only" in lines
    assert ("uplab report --findings .recipes/real-gpu.json .recipes/real-gpu-finer.json "
            '| tee -a "$GITHUB_STEP_SUMMARY"') in lines
