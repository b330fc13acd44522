"""Restoring the first two layers from the base recovers original-domain performance.

Seed: "(Not related to upscaling) The first two layers are sus - their weights are wildly
different from the original. I wonder if we could recover smarts by merging that back in with
base, or if those layers contain the most influence and must be preserved."

Operationalisation: per seed, the normal fine-tune (no upscale, as the seed says it is not
related to upscaling). Reset an adjacent pair of decoder layers to the base's weights (the run's
step-0 snapshot; embeddings and the other layers keep their fine-tuned weights) and score both
held-out sets. When the target conflicts with the original domain, restoring any two fine-tuned
layers lowers the original loss, so the first layers are compared with control pairs at an
exchange rate: e(pair) = (original loss after − before) / (target loss after − before), the
original loss recovered per nat of target loss given up, defined only where the reset raised the
target loss (a ratio over a cost ≤ 0 means nothing; until issue 21 the cost was floored at 0.01
nats, a registered deviation). Primary effect (`normal`): e(0, 1) − median over the other
adjacent pairs (k, k+1), k ≥ 2, whose e is defined. A seed whose pair-0-1 reset did not raise
the target loss (or whose control pairs all did not) is left out of the primary, and counted in
the notes. Claimed direction: < 0 (the first layers recover more per nat of target lost than a
typical pair).
Secondary `normal-uncontrolled`: the card's question as asked, original loss after resetting
layers 0-1 − before. Each pair is reset once per seed, scoring both sets, and the evaluations
are shared by both cases.

Refuted when the refutation test (Holm-adjusted) shows the effect above -sesoi — no effect of interest, or the opposite direction: restoring layers 0-1 buys back less original ability per
nat of target lost than restoring other layers does.
"""

from __future__ import annotations

from harness.claims.function import exchange_rate, heldout, loss, pair_contrast, reset_losses
from harness.claims.measured import Measured
from harness.claims.memo import stored
from harness.claims.measures import measure
from harness.claims.measures._cases import check_case
from harness.plots import new_figure

CASES = ("normal", "normal-uncontrolled")
RESTORED = (0, 1)


def cost_plot(orig_change, target_change, seeds):
    fig = new_figure(5.0, 3.0)
    ax = fig.add_subplot()
    ax.scatter(orig_change, target_change)
    for x, y, s in zip(orig_change, target_change, seeds):
        ax.annotate(str(s), (x, y), fontsize=7, xytext=(3, 0), textcoords="offset points")
    ax.axvline(0, color="black", lw=0.6)
    ax.axhline(0, color="black", lw=0.6)
    ax.set_xlabel("original loss change (after reset − before)")
    ax.set_ylabel("target loss change (cost)")
    return fig


# run key -> {pair: (original change, target change)}: one reset pass per pair per seed, shared
# by both cases (a session measures the primary and the secondary on the same runs).
_CHANGES: dict[str, dict[tuple[int, int], tuple[float, float]]] = {}


def pair_changes(run) -> dict[tuple[int, int], tuple[float, float]]:
    """Per adjacent pair (k, k+1): (original, target) held-out loss change when the pair is reset
    to the run's step-0 weights."""
    if run.key not in _CHANGES:
        def compute() -> list[list[float]]:
            model, base = run.model(), run.state_dict(0)
            datas = [heldout(run, "original"), heldout(run, "target")]
            before = [loss(model, d) for d in datas]
            out = []
            for k in range(model.config.num_hidden_layers - 1):
                after = reset_losses(model, datas, (k, k + 1), base)
                out.append([k, after[0] - before[0], after[1] - before[1]])
            return out

        rows = stored(run, ["reset_pairs", "original", "target"], compute)
        _CHANGES[run.key] = {(k, k + 1): (o, t) for k, o, t in rows}
    return _CHANGES[run.key]


def first_pair_contrast(changes: dict[tuple[int, int], tuple[float, float]]) -> float | None:
    """e(0, 1) − median over the pairs (k, k+1), k >= 2, of e (pair (1, 2) shares layer 1);
    None where it is undefined (`pair_contrast`)."""
    rates = {p: exchange_rate(o, t) for p, (o, t) in changes.items() if p == RESTORED or p[0] >= 2}
    return pair_contrast(rates, RESTORED)


@measure("merge_back_first_layers")
def merge_back_first_layers(lab, seeds: list[int], case: str) -> Measured:
    check_case("merge_back_first_layers", case, CASES)
    lab.needs("original")
    runs = [lab.normal(seed) for seed in seeds]
    changes = [pair_changes(run) for run in runs]
    orig_change = [c[RESTORED][0] for c in changes]
    target_change = [c[RESTORED][1] for c in changes]
    notes = {"target loss change of the layers 0-1 reset (cost)": target_change}
    kept = list(range(len(seeds)))
    if case == "normal":
        contrasts = [first_pair_contrast(c) for c in changes]
        kept = [i for i, e in enumerate(contrasts) if e is not None]
        if len(kept) < 2:
            raise ValueError(f"the exchange rate is undefined on {len(seeds) - len(kept)} of {len(seeds)} seeds "
                             "(resetting the pairs did not raise the target loss): nothing to decide")
        effects = [contrasts[i] for i in kept]
        rates = [exchange_rate(orig_change[i], target_change[i]) for i in kept]
        notes = {"exchange rate of layers 0-1": rates,
                 "original loss change of the layers 0-1 reset": [orig_change[i] for i in kept],
                 "target loss change of the layers 0-1 reset (cost)": [target_change[i] for i in kept],
                 "seeds left out (exchange rate undefined)": [len(seeds) - len(kept)] * len(kept)}
    else:
        effects = orig_change
    return Measured(effects=effects, seeds=[seeds[i] for i in kept], runs=[r.key for r in runs], notes=notes,
                    plots=lambda: {"original gain vs target cost of the reset, per seed":
                                   cost_plot(orig_change, target_change, seeds)})
