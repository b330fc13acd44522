"""A manifest of real checkpoints (issue 25): SmolLM2-135M-Instruct's first 8 layers (the real
scale's base, truncated so a test can train it), its contiguous upscale fine-tuned for two short
epochs on Python source with 4 snapshots, and an ordinary fine-tune of the same base as the control
pair. Every claim with a one-run form is decided from it end to end, the report's head holds the
fill meter and the card's heatmaps, and reading it all stays streamed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from harness.errors import UplabError

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def manifest(tmp_path_factory) -> Path:
    pytest.importorskip("gguf", reason="needs the real extra: pip install -e '.[real]'")
    from harness import real
    from harness.claims.lab import Lab
    from harness.claims.real import REAL_BATCH, REAL_LEN, real_setting
    from harness.data import DataSpec
    from harness.data.spec import Text

    cache = tmp_path_factory.mktemp("real")
    try:
        base = real.truncated_base(cache, 8)
    except UplabError as e:  # the wheel is not installed
        pytest.skip(str(e))
    python = Text.of("python", heldout_percent=10, size=4 * REAL_BATCH)  # an epoch of 4 steps
    data = DataSpec(train=python, evals={"original": Text.of("prose", heldout_percent=30), "target": python},
                    eval_size=2, batch_size=REAL_BATCH, max_len=REAL_LEN, train_on="all")
    lab = Lab(cache, real_setting(base))
    # lr 3e-3 (not the real scale's 1e-4): 8 steps must move the weights past the regime checks'
    # 1 % and refill the copies, so that the test sees verdicts and not only "not in regime"
    run = lab.upscaled(0, "contiguous", data=data, epochs=2, snapshots=(0, 2, 6), lr=3e-3)
    normal = lab.normal(1, data=data, epochs=1, snapshots=(0,), lr=3e-3)
    assert run.steps == [0, 2, 4, 6, 8] and normal.steps == [0, 4]
    folder = tmp_path_factory.mktemp("manifest")
    (folder / "plan.yml").write_text(run.spec.plan.text)
    body = {"base": str(base), "upscale": "plan.yml", "upscaled": str(run.snapshot_path(0)),
            "snapshots": [{"path": str(run.snapshot_path(s)), "step": s, **({"epoch": s // 4} if s % 4 == 0 else {})}
                          for s in (2, 4, 6, 8)],
            "controls": [{"name": "SmolLM2 x Python", "base": str(normal.snapshot_path(0)),
                          "tuned": str(normal.snapshot_path())}]}
    path = folder / "manifest.yml"
    path.write_text(yaml.safe_dump(body, sort_keys=False))
    return path


def test_every_one_run_form_is_decided_from_real_checkpoints(manifest, tmp_path):
    from harness.claims.registry import load

    out = tmp_path / "report"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "hypotheses/", "--scale", "full", "--checkpoints", str(manifest),
         "--report-dir", str(out), "--run-cache", str(tmp_path / "cache"), "-p", "no:xdist",
         "-p", "no:cacheprovider", "-q"], cwd=ROOT, capture_output=True, text=True, timeout=1200)
    print(proc.stdout[-4000:])
    assert "Traceback" not in proc.stdout + proc.stderr
    document = json.loads((out / "claims.json").read_text())
    forms = {cid for cid, e in load().claims.items() if e.within}
    primaries = {c["id"]: c for c in document["claims"] if c["primary"]}
    assert set(primaries) == forms  # every registered one-run form, decided
    for c in primaries.values():
        d = c["decision"]
        failed = {k["name"] for k in c["regime"]["checks"] if not k["passed"]}
        assert d["within_run"] and "trained_long_enough" not in failed, (c["id"], c["regime"])
        if d["verdict"] == "not in regime":
            # 8 steps refill the copies less than the card's regime asks: claims about filled
            # copies say so, with the verdict the statistics alone would give
            assert failed == {"copies_refilled"} and d["statistical_verdict"], (c["id"], failed)
        else:
            assert d["verdict"] in ("supported", "refuted", "inconclusive", "smaller"), c["id"]
        assert c["units"].split(" × ")[1].startswith(load().entry(c["id"]).within.unit)
    head = document["provenance"]["manifest"]
    assert head["steps"] == [0, 2, 4, 6, 8] and head["controls"] == ["SmolLM2 x Python"]
    assert len(head["fill"]["rows"]) == 2 * len({r[0] for r in head["fill"]["rows"]}) >= 2
    assert len(head["heatmaps"]) == 4 + 3 + 1


PROBE = """
import json, re, sys
from harness.runs.manifest import load_manifest
from reports.manifest import section
# imported before the peak is reset: imports are not what is measured
import harness.claims.fill, harness.claims.lab, harness.heatmap, harness.stats, matplotlib.figure

def status(field):
    return int(re.search(field + r":\\s+(\\d+) kB", open("/proc/self/status").read()).group(1)) * 1024

run = load_manifest(sys.argv[1])
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")
before = status("VmRSS")
section(run)
print(json.dumps({"grown": status("VmHWM") - before}))
"""


@pytest.mark.skipif(not os.access("/proc/self/clear_refs", os.W_OK), reason="needs Linux's resettable peak RSS")
def test_the_manifest_analysis_stays_streamed(manifest):
    """Every pair of checkpoints the report head reads (8 heatmaps, the fill meter) is streamed a
    chunk at a time, as `uplab diff` does: the peak grows by far less than one snapshot, so on
    the card's 39B (80 GB a snapshot) it fits where `uplab diff` fits. Measured: 24 MB for a
    311 MB snapshot (one `weight_deltas` alone: 12 MB); reading tensors whole would add 2 x 113 MB
    (the embedding matrix) at least."""
    snapshot = Path(yaml.safe_load(manifest.read_text())["snapshots"][-1]["path"]).stat().st_size
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, "-c", PROBE, str(manifest)], env=env, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    grown = json.loads(done.stdout.strip().splitlines()[-1])["grown"]
    assert grown < 0.25 * snapshot, (grown, snapshot)
