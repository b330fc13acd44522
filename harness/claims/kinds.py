"""Run kinds: every run the claims of a session read, grouped by what it is, with its regime
numbers per seed (issue 26: "for each run kind, the regime checks' per-seed pass counts").

The registry's regime checks decide claims on the default pair (harness.claims.regime); this
module reports the same per-run numbers on every other kind a claim trained (an SGD arm, a
higher lr, LoRA, the conflicting target, a deeper base), so a reader sees which runs reached the
card's regime and which were never meant to (the harder arm forgets on purpose). It decides
nothing.

A kind's label lists how its spec differs from the scale's default fine-tune of the same
layout: `contiguous`, `normal · lr 0.02`, `contiguous · SGD lr 0.0995`, `normal · LoRA r8`.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping
from pathlib import Path

from harness.claims.settings import STRATEGIES, fields_for, plan_for
from harness.claims.time import mean_fill
from harness.runs.result import RunResult
from harness.runs.spec import RunSpec, Scratch

# what a regime number is read from at the end of a run (regime.py reads the same)
ZEROED = (["o_proj"], ["down_proj"])


def target_value(run: RunResult) -> tuple[float, bool]:
    """Held-out target exact match at the end, or (free text) its loss drop / step-0 loss."""
    start, end = run.scores(0)["target"], run.scores()["target"]
    if end.get("acc") is None:
        return (start["loss"] - end["loss"]) / start["loss"], True
    return end["acc"], False


def original_value(run: RunResult) -> tuple[float, bool] | None:
    """Held-out original exact match at the end, or (free text) its loss rise in nats; None when
    the run is not scored on the original domain."""
    if "original" not in run.scores():
        return None
    start, end = run.scores(0)["original"], run.scores()["original"]
    if end.get("acc") is None:
        return end["loss"] - start["loss"], True
    return end["acc"], False


def fill_value(rows) -> float:
    """The smaller of the duplicates' mean o_proj and down_proj fills (rows of an upscale's diff)."""
    return min(mean_fill(rows, m) for m in ZEROED)


def layout_of(spec: RunSpec, depth: int) -> str:
    """The registry's name of the spec's upscale (normal: none), or 'plan (N layers)'."""
    if spec.plan is None:
        return "normal"
    for strategy in STRATEGIES:
        if plan_for(strategy, depth).text == spec.plan.text:
            return strategy
    return f"plan ({sum(b - a for a, b in spec.plan.ranges())} layers)"


def _fmt(x) -> str:
    return f"{x:.3g}" if isinstance(x, float) else str(x)


def label(spec: RunSpec, default: RunSpec, depth: int) -> str:
    """What the run is: its layout, then each way it differs from the default fine-tune."""
    parts = [layout_of(spec, depth)]
    root = spec.root()
    if getattr(root, "preset", "").partition("@")[2]:
        parts.append(f"base of {root.preset.partition('@')[2]} layers")
    if spec.mode.kind != "full":
        parts.append("LoRA r%d" % spec.mode.r if spec.mode.kind == "lora" else "freeze")
    if spec.optimizer != default.optimizer:
        parts.append(f"{spec.optimizer.upper()} lr {_fmt(spec.lr)}")
    elif spec.lr != default.lr:
        parts.append(f"lr {_fmt(spec.lr)}")
    train, base_train = spec.data.train, default.data.train
    if getattr(train, "domain", None) != getattr(base_train, "domain", None):
        parts.append(f"{train.domain} target")
    if (spec.steps, spec.epochs) != (default.steps, default.epochs):
        parts.append(f"{spec.steps} steps" if spec.steps else f"{spec.epochs} epochs")
    if spec.track or spec.snapshots != default.snapshots:
        parts.append("dense snapshots" if spec.track else "other snapshots")
    return " · ".join(parts)


def _median(values: list[float]) -> float | None:
    return float(statistics.median(values)) if values else None


def summarize(keys: Iterable[str], cache: Path, lab, checks: Mapping) -> list[dict]:
    """Per run kind among the runs `keys` name (their cache entries): its seeds, and per regime
    number (target, original, fill) the per-seed values, the seeds passing the registry's
    threshold (`checks`: the registry's regime_checks, in their free-text form where the runs are
    scored on text) and the median. Pre-training runs are left out (they are not fine-tunes)."""
    from harness.claims.lab import deltas

    kinds: dict[str, list[RunResult]] = {}
    for key in dict.fromkeys(keys):
        path = Path(cache) / key
        if not (path / "spec.json").is_file():
            continue
        run = RunResult(RunSpec.from_json((path / "spec.json").read_text()), path)
        if isinstance(run.spec.base, Scratch):
            continue  # a pre-training (a fine-tune's base is a run, or a checkpoint at `real`)
        default = default_of(lab, run.spec)
        # the default fine-tune trained as its long twin (Lab.trained_spec) is the default kind
        shown = default if run.spec == lab.trained_spec(default) else run.spec
        kinds.setdefault(label(shown, default, lab.setting.depth), []).append(run)
    rows = []
    for name, runs in sorted(kinds.items()):
        runs = sorted(runs, key=lambda r: r.spec.seed)
        values: dict[str, list[float]] = {"target_learned": [], "original_kept": [], "copies_refilled": []}
        text = False
        for run in runs:
            value, text = target_value(run)
            values["target_learned"].append(value)
            orig = original_value(run)
            if orig is not None:
                values["original_kept"].append(orig[0])
            lm = lab.map_of(run.spec.plan) if run.spec.plan is not None else None
            if lm is not None and lm.indices("dup"):
                values["copies_refilled"].append(fill_value(deltas(run, lm)))
        out = {}
        for check, vals in values.items():
            if not vals or check not in checks:
                continue
            form = checks[check].text if text and checks[check].text is not None else checks[check]
            op, bound = (">=", form.at_least) if form.at_least is not None else ("<=", form.at_most)
            ok = (lambda v: v >= bound) if op == ">=" else (lambda v: v <= bound)
            out[check] = {"values": vals, "passing": sum(bool(ok(v)) for v in vals),
                          "median": _median(vals), "op": op, "threshold": bound}
        rows.append({"kind": name, "seeds": [r.spec.seed for r in runs], "checks": out})
    return rows


def default_of(lab, spec: RunSpec) -> RunSpec:
    """The scale's default fine-tune of the same layout as `spec`, for its seed (not trained)."""
    from harness.runs import finetune

    return finetune(lab.setting.base_of(spec.seed), plan=spec.plan, seed=spec.seed,
                    **fields_for(lab.setting.finetune, spec.seed))
