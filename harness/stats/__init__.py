"""Statistics for uplab's claims (DESIGN §8): seed-level decisions and their building blocks.

The unit of replication is the training run (seed). A claim's per-run effects go to `decide`
(or `decide_paired` for two conditions sharing seeds), which returns a `Decision`: mean,
percentile bootstrap CI, one-sided exact sign-flip p, verdict. `adjust` applies Holm across the
decisions of one report. With a single run, `within_run` tests over layers and says so.

Building blocks turn a run's measurements into a per-run effect (and a within-run p):
`trend` (Spearman), `break_at_boundaries` (jumps at slice starts), `saturation` (saturating vs
linear growth), `robust_z` (median/MAD outliers). `power` is the Monte-Carlo power of `decide`.
Everything is deterministic given `seed`.
"""

from harness.stats.breaks import Break, break_at_boundaries
from harness.stats.decide import decide, decide_paired, decide_rows
from harness.stats.decision import Decision, verdict_rule
from harness.stats.equivalence import decide_equivalence
from harness.stats.holm import adjust, holm
from harness.stats.power import Power, power
from harness.stats.robust import robust_z
from harness.stats.saturation import Saturation, saturation
from harness.stats.signflip import signflip_p
from harness.stats.trend import Trend, trend
from harness.stats.within_run import within_run

__all__ = [
    "Break", "Decision", "Power", "Saturation", "Trend",
    "adjust", "break_at_boundaries", "decide", "decide_equivalence", "decide_paired", "decide_rows", "holm",
    "power", "robust_z", "saturation", "signflip_p", "trend", "verdict_rule", "within_run",
]
