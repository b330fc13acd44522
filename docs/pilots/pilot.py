"""Issue 26 pre-training pilot: 12 stacked bases under one pre-training recipe; per seed the
original-domain held-out exact match and loss, single-layer skip costs (every layer, and the
mapped range: [6, 12) at 16 layers), and optionally the default fine-tune pair's regime numbers.
WIDTH=w and LAYERS=l change the `tiny` preset in this process only (a pilot's own cache)."""
import json, os, statistics as st, sys, time
from pathlib import Path
import torch
torch.set_num_threads(1)
from harness.runs import get_or_run_many
from harness.runs.spec import tiny_base, finetune
from harness.data import DataSpec
from harness.claims.settings import plan_for, seed_layout_range
from harness.claims.function import skip_rises
from harness.claims.lab import deltas
from harness.claims.kinds import fill_value

from dataclasses import replace
from harness import tiny
# a pilot's own cache only: the preset keeps its name, so keys would collide elsewhere
width = os.environ.get("WIDTH")
if width:
    w = int(width)
    tiny.PRESETS["tiny"] = replace(tiny.PRESETS["tiny"], hidden=w, intermediate=2 * w)
if os.environ.get("LAYERS"):
    tiny.PRESETS["tiny"] = replace(tiny.PRESETS["tiny"], num_layers=int(os.environ["LAYERS"]))
L = tiny.PRESETS["tiny"].num_layers
cache = Path(sys.argv[1]); steps, lr, wd = int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
ft = len(sys.argv) > 5 and sys.argv[5] == "ft"
n = int(os.environ.get("N", 12)); seeds = range(n)
extra = json.loads(os.environ.get("EXTRA", "{}"))
specs = [tiny_base(s, steps=steps, lr=lr, weight_decay=wd, data=DataSpec.synthetic("original", size=steps * 32), **extra)
         for s in seeds]
t = time.time(); bases = get_or_run_many(specs, cache); dt = time.time() - t
lo, hi = seed_layout_range(L)
rows = []
for s, r in zip(seeds, bases):
    costs = skip_rises(r, [[l] for l in range(L)], "original")
    mid = costs[lo:hi]
    sc = r.scores()["original"]
    rows.append(dict(seed=s, em=round(sc["acc"], 3), loss=round(sc["loss"], 4), med_all=round(st.median(costs), 3),
                     n_all=sum(c > 0.1 for c in costs), mid=round(st.median(mid), 3), nmid=sum(c > 0.1 for c in mid)))
    print(json.dumps(rows[-1]), flush=True)
print("PRETRAIN", L, "layers", steps, lr, wd, extra, "wall", round(dt), "mid>=0.1:", sum(r["mid"] >= 0.1 for r in rows), "/", n,
      "med_all>=0.1:", sum(r["med_all"] >= 0.1 for r in rows), "half>0.1:", sum(2 * r["n_all"] >= L for r in rows),
      "em min", min(r["em"] for r in rows), flush=True)
if ft:
    for layout in ("normal", "contiguous"):
        plan = None if layout == "normal" else plan_for("contiguous", L)
        fs = [finetune(b, plan=plan, seed=s) for s, b in zip(seeds, specs)]
        t = time.time(); runs = get_or_run_many(fs, cache); dt = time.time() - t
        tem = [round(r.scores()["target"]["acc"], 3) for r in runs]
        oem = [round(r.scores()["original"]["acc"], 3) for r in runs]
        row = dict(layout=layout, wall=round(dt), target_em=tem, orig_em=oem)
        if plan is not None:
            lm = plan.layer_map(L, "mistral")
            row["fill"] = [round(fill_value(deltas(r, lm)), 3) for r in runs]
        print("FT", json.dumps(row), flush=True)
