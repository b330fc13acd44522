"""Figures that several claims draw: the retention trade-off of two paired arms."""

from __future__ import annotations

from harness.claims.function import final, rise
from harness.plots import new_figure


def tradeoff_plot(first, second, seeds, labels: tuple[str, str]):
    """Per seed, target loss at the end against the original loss rise, for two arms that share
    seeds (lines join a seed's pair; the `first` arm's points carry the seed)."""
    fig = new_figure(5.0, 3.2)
    ax = fig.add_subplot()
    for runs, label, marker in ((second, labels[1], "o"), (first, labels[0], "s")):
        ax.scatter([final(r, "target") for r in runs], [rise(r) for r in runs], marker=marker, label=label)
    for a, b, s in zip(first, second, seeds):
        ax.plot([final(a, "target"), final(b, "target")], [rise(a), rise(b)], color="#999999", lw=0.6)
        ax.annotate(str(s), (final(a, "target"), rise(a)), fontsize=7, xytext=(3, 0), textcoords="offset points")
    ax.set_xlabel("target loss at end")
    ax.set_ylabel("original loss rise (end − step 0)")
    ax.legend(fontsize=7)
    return fig
