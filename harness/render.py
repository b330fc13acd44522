"""Text views of a layer map: the seed's `000XX0...` line, its segments, and a per-layer table."""

from __future__ import annotations

from itertools import groupby

from harness.layermap import LayerMap

SYMBOL = {"orig": "0", "dup": "X"}


def diagram(lm: LayerMap) -> str:
    return "".join(SYMBOL[e.role] for e in lm.layers)


def segments(lm: LayerMap) -> list[tuple[str, int, int, float]]:
    """Runs of one role: (role, first output layer, last output layer, share of the output)."""
    out, i = [], 0
    for role, run in groupby(lm.layers, key=lambda e: e.role):
        n = len(list(run))
        out.append((role, i, i + n - 1, 100.0 * n / max(1, lm.num_layers)))
        i += n
    return out


def source_segments(lm: LayerMap) -> list[tuple[int, int, int, float]]:
    """Runs of source layers by copy count, as the seed's card reads its upscale:
    (copies, first source layer, last source layer, share of the source)."""
    copies = [sum(1 for e in lm.layers if e.source == s) for s in range(lm.source_layers)]
    out, i = [], 0
    for count, run in groupby(copies):
        n = len(list(run))
        out.append((count, i, i + n - 1, 100.0 * n / max(1, lm.source_layers)))
        i += n
    return out


def summary(lm: LayerMap) -> str:
    n, dups = lm.num_layers, len(lm.indices("dup"))
    lines = [
        f"{lm.source_layers} source layers -> {n} output layers "
        f"({n - dups} orig, {dups} dup; {100.0 * dups / max(1, n):.1f}% duplicated)",
        diagram(lm),
        "output: " + "  ".join(f"[{r} {a}-{b}: {p:.1f}%]" for r, a, b, p in segments(lm)),
        "source: " + "  ".join(f"[x{c} {a}-{b}: {p:.1f}%]" for c, a, b, p in source_segments(lm)),
    ]
    return "\n".join(lines)


def table(lm: LayerMap) -> str:
    rows = [("out", "source", "role", "slice", "scales != 1")]
    for e in lm.layers:
        scaled = ", ".join(f"{m}={s:g}" for m, s in e.scales.items() if s != 1.0) or "-"
        rows.append((str(e.index), str(e.source), e.role, str(e.slice), scaled))
    extra = ", ".join(f"{m}={s:g}" for m, s in lm.extra_scales.items() if s != 1.0)
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    text = "\n".join(
        "  ".join(c.rjust(w) for c, w in zip(r[:4], widths)) + "  " + r[4] for r in rows
    )
    return text + (f"\nnon-layer tensors scaled: {extra}" if extra else "")
