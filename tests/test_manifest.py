"""--checkpoints MANIFEST: parsing, every bad input, and the claim suite's within-run fallback on
a real (tiny) fine-tune described by a manifest, as checkpoints trained elsewhere would be."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from harness.claims.settings import plan_for
from harness.errors import UplabError
from harness.runs import finetune, get_or_run, tiny_base
from harness.runs.manifest import load_manifest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny base and a 2-epoch fine-tune (8 steps an epoch, snapshots every 4 steps) of its
    contiguous upscale."""
    cache = tmp_path_factory.mktemp("cache")
    base = tiny_base(0, preset="tiny8", steps=40)
    run = finetune(base, plan=plan_for("contiguous", 8), epochs=2, snapshots=(0, 4, 12), data=_target(8 * 32))
    return get_or_run(base, cache), get_or_run(run, cache)


@pytest.fixture(scope="module")
def normal(trained, tmp_path_factory):
    """An ordinary fine-tune of the same base: a control pair (base, tuned)."""
    base, _ = trained
    run = finetune(base.spec, plan=None, epochs=1, snapshots=(0,), data=_target(8 * 32), seed=1)
    return get_or_run(run, tmp_path_factory.mktemp("normal"))


def _target(size):
    from harness.data import DataSpec

    return DataSpec.synthetic("target", size=size)


def write_manifest(folder: Path, base_run, run, changes=None) -> Path:
    (folder / "plan.yml").write_text(run.spec.plan.text)
    body = {"base": str(base_run.path), "upscale": "plan.yml", "upscaled": str(run.snapshot_path(0)),
            "snapshots": [{"path": str(run.snapshot_path(run.epoch_end(1))), "epoch": 1},
                          {"path": str(run.snapshot_path(run.epoch_end(2))), "epoch": 2}]}
    body.update(changes or {})
    path = folder / "manifest.yml"
    path.write_text(yaml.safe_dump(body))
    return path


def test_manifest_reads_like_a_run(trained, tmp_path):
    base, run = trained
    m = load_manifest(write_manifest(tmp_path, base, run))
    assert m.steps == [0, 1, 2]  # no `step` given: positions
    assert (m.epoch_end(1), m.epoch_end(2)) == (1, 2)
    assert m.snapshot_path(0) == run.snapshot_path(0)
    assert m.snapshot_path() == run.snapshot_path(run.epoch_end(2))
    assert m.layer_map.num_layers == 14 and m.layer_map.roles().count("dup") == 6
    assert m.key.startswith("manifest:")
    with pytest.raises(UplabError, match="marks no snapshot as epoch 3"):
        m.epoch_end(3)
    with pytest.raises(UplabError, match="no snapshot at step 7"):
        m.snapshot_path(7)


def test_relative_paths_and_steps(trained, tmp_path):
    base, run = trained
    snaps = [{"path": os.path.relpath(run.snapshot_path(s), tmp_path), "step": s}
             for s in (run.epoch_end(1), run.epoch_end(2))]
    m = load_manifest(write_manifest(tmp_path, base, run, {"snapshots": snaps}))
    assert m.steps == [0, 8, 16]


@pytest.mark.parametrize("change, message", [
    ({"base": None}, "base: Input should be a valid string"),
    ({"upscaled": "nowhere"}, "upscaled 'nowhere' does not exist"),
    ({"snapshots": []}, "snapshots: List should have at least 1 item"),
    ({"extra": 1}, "extra: Extra inputs are not permitted"),
    ({"snapshots": [{"path": "plan.yml", "step": 2}, {"path": "plan.yml"}]}, "give `step` for every snapshot or for none"),
    ({"snapshots": [{"path": "plan.yml", "step": 2}, {"path": "plan.yml", "step": 2}]}, "must increase"),
], ids=["base-null", "missing-path", "no-snapshots", "unknown-key", "partial-steps", "repeated-steps"])
def test_bad_manifest_is_one_line(trained, tmp_path, change, message):
    base, run = trained
    with pytest.raises(UplabError, match=message.replace("(", r"\(").replace("[", r"\[")) as e:
        load_manifest(write_manifest(tmp_path, base, run, change))
    assert "\n" not in str(e.value)


def test_depth_mismatch_names_both_depths(trained, tmp_path):
    base, run = trained
    # the base run's snapshot has 8 layers where the upscale config gives 14
    path = write_manifest(tmp_path, base, run, {"upscaled": str(base.snapshot_path())})
    with pytest.raises(UplabError, match="upscaled has 8 layers but the upscale config on the 8-layer base gives 14"):
        load_manifest(path)


def test_not_yaml(tmp_path):
    path = tmp_path / "m.yml"
    path.write_text("base: [unclosed\n")
    with pytest.raises(UplabError, match="not valid YAML at line"):
        load_manifest(path)


def control_of(run, name="tiny x target") -> dict:
    return {"name": name, "base": str(run.snapshot_path(0)), "tuned": str(run.snapshot_path())}


def test_suite_on_a_manifest_falls_back_within_run(trained, normal, tmp_path):
    """`pytest hypotheses/ --scale full --checkpoints M`: every claim with a one-run form decides
    over the units of the one run (and its control pair) and says so; claims that need training or
    seeds skip with the reason."""
    base, run = trained
    snaps = [{"path": str(run.snapshot_path(s)), "step": s, **({"epoch": s // 8} if s % 8 == 0 else {})}
             for s in (4, 8, 12, 16)]
    manifest = write_manifest(tmp_path, base, run, {"snapshots": snaps, "controls": [control_of(normal)]})
    out = tmp_path / "report"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "hypotheses/", "--scale", "full", "--checkpoints", str(manifest),
         "--report-dir", str(out), "--run-cache", str(tmp_path / "cache"), "-p", "no:xdist",
         "-p", "no:cacheprovider", "-rs", "-q"],
        cwd=ROOT, capture_output=True, text=True, timeout=600)
    print(proc.stdout[-6000:])
    document = json.loads((out / "claims.json").read_text())
    claims = document["claims"]
    # what did not run is in the report too, with its reason
    reasons = " ".join(g["reason"] for g in document["skipped"])
    assert "--checkpoints gives one run trained elsewhere" in reasons and "the manifest holds one upscale" in reasons
    assert sum(len(g["tests"]) for g in document["skipped"]) >= 20
    decided = {c["id"]: c for c in claims}
    # the within-run claims, and only the manifest's one layout (contiguous)
    assert set(decided) == {"dups_more_responsive", "post_norm_moves_in_dups", "o_proj_less_sensitive",
                            "dup_rate_not_slowing", "slice_own_gradient", "first_layers_outliers",
                            "upscale_perturbs_profile", "dups_saturate", "slices_self_connected"}, proc.stdout[-3000:]
    from harness.claims.registry import load

    units = {"first_layers_outliers": 2, "upscale_perturbs_profile": (14 - 2) + (8 - 2),
             "dups_saturate": 3, "slices_self_connected": 2}  # fine-tunes, interior layers, dup sources
    # (slices_self_connected: a middle copy has within-slice pairs at distance 1 only, and no
    # across-slice pair at 1, so it is left out; sources 3 and 5 remain)
    for c in claims:
        primary_case = {"slice_own_gradient": "within", "first_layers_outliers": "normal"}.get(c["id"], "contiguous")
        # exploratory cases with a within-run form on the manifest's one layout are decided too
        assert c["scale"] == "full" and (c["case"] == primary_case if c["primary"] else
                                         c["case"] in ("contiguous-all-layers", "contiguous-unmatched",
                                                       "contiguous-uncontrolled"))
        assert c["decision"]["within_run"] is True and c["decision"]["n"] == 1
        assert c["method"].startswith("within-run: units (layers, slices or fine-tunes of one manifest) are not independent replicates")
        # the effective n is counted in independent units (copies of one source layer are one),
        # and no seed list is shown that was not used
        assert "from one manifest (checkpoints trained elsewhere)" in c["units"] and c["seeds"] is None and c["effects"] is None
        assert int(c["units"].split()[0]) < 14 + 6  # fewer units than output layers (dup copies merged)
        if c["primary"]:
            assert c["family"]["size"] == 9 and "upscale_room" in c["family"]["not_decided"]
            # the registered one-run form, its unit named in the effective n
            form = load().entry(c["id"]).within
            assert c["protocol"]["within"]["unit"] == form.unit and form.unit in c["units"], c["id"]
            if c["id"] in units:
                assert c["units"].startswith(f"{units[c['id']]} × "), (c["id"], c["units"])
    # the head of the report: the fill meter and the card's heatmaps on shared module scales
    head = document["provenance"]["manifest"]
    assert head["steps"] == [0, 4, 8, 12, 16] and head["controls"] == ["tiny x target"], head.get("error")
    assert len(head["fill"]["rows"]) == 2 * 2  # 2 duplicated slices x (o_proj, down_proj)
    assert all(row[4][0].isdigit() or row[4].startswith("none") for row in head["fill"]["rows"])
    assert [h["caption"] for h in head["heatmaps"]][-1] == "control tiny x target: base → fine-tuned"
    assert len(head["heatmaps"]) == 4 + 3 + 1  # upscaled → each snapshot, consecutive, the control
    html = (out / "index.html").read_text()
    assert 'id="fill-table"' in html and "<figcaption>control tiny x target: base → fine-tuned</figcaption>" in html
    assert "--checkpoints gives one run trained elsewhere" in proc.stdout
    assert "the manifest holds one upscale" in proc.stdout
    assert "Traceback" not in proc.stdout + proc.stderr
    # a within-run verdict may differ from the seed-level expectation; nothing else may fail
    failed = [line for line in proc.stdout.splitlines() if line.startswith(("FAILED", "ERROR"))]
    assert all(any(f"::test_{name}" in line or name in line for name in
                   ("dups_more_responsive", "post_norm", "o_proj", "dup_rate", "slice_own_gradient[full-within]",
                "first_layers", "upscale_perturbs", "dups_saturate", "slices_self"))
               for line in failed), failed


# ---- issue 24: epochs, the plan against the weights, snapshots that moved, unreadable files ----

@pytest.mark.parametrize("epochs", [(2, 1), (1, 1)], ids=["reversed", "repeated"])
def test_epochs_must_strictly_increase(trained, tmp_path, epochs):
    """Epochs 2 then 1 flipped a verdict; repeated epochs failed 5 tests later."""
    base, run = trained
    snaps = [{"path": str(run.snapshot_path(run.epoch_end(e))), "epoch": e} for e in epochs]
    with pytest.raises(UplabError, match=r"snapshot epochs \[\d, \d\] must strictly increase"):
        load_manifest(write_manifest(tmp_path, base, run, {"snapshots": snaps}))


def _with_plan(tmp_path, base, run, plan) -> Path:
    path = write_manifest(tmp_path, base, run)
    (tmp_path / "plan.yml").write_text(plan.text)
    return path


@pytest.mark.parametrize("plan", [
    lambda: plan_for("interleaved", 8),
    lambda: __import__("harness.strategies", fromlist=["contiguous"]).contiguous(1, 4, num_layers=8, copies=2),
], ids=["interleaved-over-contiguous", "other-range"])
def test_a_plan_that_did_not_build_the_upscale_is_refused(trained, tmp_path, plan):
    """Same depth (14 layers), other layer roles: caught from the upscaled weights, not the depth."""
    base, run = trained
    with pytest.raises(UplabError, match=r"upscaled layer \d+ .* is not .*give the config that built it") as e:
        load_manifest(_with_plan(tmp_path, base, run, plan()))
    assert "\n" not in str(e.value)


def test_snapshots_that_never_moved_are_refused(trained, tmp_path):
    base, run = trained
    snaps = [{"path": str(run.snapshot_path(0)), "epoch": 1}]
    with pytest.raises(UplabError, match="the last snapshot equals the upscaled model"):
        load_manifest(write_manifest(tmp_path, base, run, {"snapshots": snaps}))


@pytest.mark.parametrize("key, value", [("hidden_size", 32), ("model_type", "llama")])
def test_a_snapshot_of_another_model_is_refused(trained, tmp_path, key, value):
    base, run = trained
    other = tmp_path / "other"
    other.mkdir()
    config = json.loads((run.path / "config.json").read_text())
    (other / "config.json").write_text(json.dumps({**config, key: value}))
    (other / "model.safetensors").symlink_to(run.snapshot_path(run.epoch_end(2)))
    snaps = [{"path": str(other), "epoch": 2}]
    with pytest.raises(UplabError, match=f"snapshot 1 has {key} {value!r} but the upscaled model has"):
        load_manifest(write_manifest(tmp_path, base, run, {"snapshots": snaps}))


def test_unreadable_manifests_are_one_line(tmp_path):
    loop = tmp_path / "loop.yml"
    loop.symlink_to(loop)
    latin = tmp_path / "latin.yml"
    latin.write_bytes(b"base: caf\xe9\n")
    huge = tmp_path / "huge.yml"
    with open(huge, "wb") as f:
        f.truncate(2 << 30)  # sparse: 2 GiB that must not be read
    for path, message in [(loop, "symlink loop"), (latin, "not UTF-8 text"), (huge, "is over 1024 KiB")]:
        with pytest.raises(UplabError, match=message) as e:
            load_manifest(path)
        assert "\n" not in str(e.value)


# ---- issue 25: control pairs, and what a manifest without them cannot decide ----

@pytest.mark.parametrize("control, message", [
    (lambda b, r, n: {"name": "same", "base": str(n.snapshot_path(0)), "tuned": str(n.snapshot_path(0))},
     r"control 1 \('same'\): tuned equals its base \(no weight has moved\)"),
    (lambda b, r, n: {"name": "grown", "base": str(n.snapshot_path(0)), "tuned": str(r.snapshot_path())},
     r"control 1 \('grown'\): tuned has depth 14 but its base has 8; a control is one ordinary fine-tune"),
    (lambda b, r, n: {"name": "gone", "base": "nowhere", "tuned": str(n.snapshot_path())},
     r"control 1 \('gone'\) base 'nowhere' does not exist"),
    (lambda b, r, n: {"name": "", "base": str(n.snapshot_path(0)), "tuned": str(n.snapshot_path())},
     "controls.0.name: String should have at least 1 character"),
], ids=["never-moved", "an-upscale", "missing", "unnamed"])
def test_a_bad_control_pair_is_one_line(trained, normal, tmp_path, control, message):
    base, run = trained
    path = write_manifest(tmp_path, base, run, {"controls": [control(base, run, normal)]})
    with pytest.raises(UplabError, match=message) as e:
        load_manifest(path)
    assert "\n" not in str(e.value)


def test_control_names_are_unique(trained, normal, tmp_path):
    base, run = trained
    path = write_manifest(tmp_path, base, run, {"controls": [control_of(normal), control_of(normal)]})
    with pytest.raises(UplabError, match=r"control names \['tiny x target', 'tiny x target'\] must be unique"):
        load_manifest(path)


@pytest.mark.parametrize("claim_id, case, reason", [
    ("first_layers_outliers", "normal", "needs control pairs in the manifest"),
    ("upscale_perturbs_profile", "contiguous", "needs control pairs in the manifest"),
    ("dups_saturate", "contiguous", "needs at least 3 snapshots in the manifest, it has 2: a growth ratio"),
    ("dups_saturate", "contiguous-sgd", r"needs runs trained by the suite \(the SGD control arm\)"),
])
def test_a_manifest_that_cannot_decide_a_form_says_why(trained, tmp_path, claim_id, case, reason):
    from harness.claims import NotApplicable
    from harness.claims.lab import ManifestLab
    from harness.claims.measures import MEASURES

    base, run = trained
    lab = ManifestLab(load_manifest(write_manifest(tmp_path, base, run)))  # 2 snapshots, no controls
    with pytest.raises(NotApplicable, match=reason):
        MEASURES[claim_id](lab, [0], case)


def test_uplab_fill_prints_the_meter(trained, tmp_path):
    base, run = trained
    snaps = [{"path": str(run.snapshot_path(s)), "step": s} for s in (4, 8, 12, 16)]
    manifest = write_manifest(tmp_path, base, run, {"snapshots": snaps})
    proc = subprocess.run([sys.executable, "-m", "harness.cli", "fill", str(manifest)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("fill of the zeroed modules, manifest.yml: steps [0, 4, 8, 12, 16]")
    assert lines[1].split()[:2] == ["slice", "module"] and len(lines) == 3 + 4
    assert all(line.split()[0] == "layers" and "→" in line for line in lines[3:])
    bad = subprocess.run([sys.executable, "-m", "harness.cli", "fill", str(tmp_path / "none.yml")], cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and bad.stderr.startswith("uplab fill: error: cannot read manifest")
    assert bad.stderr.count("\n") == 1
