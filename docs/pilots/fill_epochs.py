"""Fill of the default contiguous upscale's zeroed modules at the end of epoch 1 (step 64) and 2
(step 128), per seed, read from a suite cache (pinned kernels, the session's 12 seeds):
`python docs/pilots/fill_epochs.py CACHE`."""
from harness.runs.kernels import pin_portable
pin_portable()
import sys, statistics as st
from pathlib import Path
from harness.claims.settings import tiny_setting
from harness.claims.lab import Lab, deltas
from harness.claims.kinds import fill_value
cache = Path(sys.argv[1])
lab = Lab(cache, tiny_setting(), together=tuple(range(12)))
lm = lab.layer_map("contiguous")  # the suite's own map at the preset's depth
rows = []
for s in range(12):
    r = lab.upscaled(s, "contiguous")
    f64 = fill_value(deltas(r, lm, 0, 64)); f128 = fill_value(deltas(r, lm, 0, 128))
    rows.append((s, round(f64, 3), round(f128, 3), round(f128 / f64 - 1, 3)))
    print(rows[-1], flush=True)
print("epoch1", min(r[1] for r in rows), max(r[1] for r in rows), "epoch2", min(r[2] for r in rows), max(r[2] for r in rows),
      "median growth", st.median(r[3] for r in rows))
