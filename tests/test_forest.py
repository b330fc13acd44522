"""The report's forest plot (reports/forest.py): one row per primary result per scale, effect and
interval in units of the sesoi with the claimed direction positive, coloured by verdict."""

from __future__ import annotations

import base64

import pytest
from matplotlib.colors import to_hex

from harness.plots import PNG_MAGIC, png_bytes
from harness.stats import Decision
from reports import build, forest
from tests.report_helpers import MIXED, PROVENANCE, family, result


def claim(effect, low, high, *, direction="greater", test="superiority", sesoi=0.1, p=0.001,
          primary=True, scale="tiny", id="c", p_ref=1.0) -> dict:
    d = Decision(effect=effect, ci_low=low, ci_high=high, p=p, n=8, method="m", direction=direction,
                 sesoi=sesoi, test=test, p_ref=p_ref)
    return {"id": id, "case": "", "scale": scale, "primary": primary, "decision": d.to_dict()}


def test_one_row_per_primary_per_scale_in_scale_order():
    records = [*family([result("dups_more_responsive", scale="small"),
                        result("o_proj_less_sensitive", effects=MIXED, scale="small")]),
               *family([result("o_proj_less_sensitive", effects=MIXED), result("dups_more_responsive")]),
               result("dups_more_responsive", "interleaved"), result("top_down_gradient", "rank")]
    doc = build.assemble(records, PROVENANCE)
    assert [(r["id"], r["scale"]) for r in doc["forest"]["rows"]] == [
        ("dups_more_responsive", "tiny"), ("o_proj_less_sensitive", "tiny"),
        ("dups_more_responsive", "small"), ("o_proj_less_sensitive", "small")]
    assert base64.b64decode(doc["forest"]["png"]).startswith(PNG_MAGIC)


def test_a_record_without_primary_counts_as_primary():
    old = claim(0.3, 0.2, 0.4)
    del old["primary"]
    assert len(forest.rows([old, claim(0.3, 0.2, 0.4, primary=False)])) == 1


@pytest.mark.parametrize("direction, effect, low, high, expected", [
    ("greater", 0.3, 0.2, 0.4, (3.0, 2.0, 4.0)),
    ("less", -0.3, -0.4, -0.2, (3.0, 2.0, 4.0)),  # claimed direction positive: turned
    ("less", 0.05, -0.02, 0.12, (-0.5, -1.2, 0.2)),
])
def test_rows_in_sesoi_units_claimed_direction_positive(direction, effect, low, high, expected):
    (row,) = forest.rows([claim(effect, low, high, direction=direction, p=0.5)])
    assert (row["x"], row["low"], row["high"]) == pytest.approx(expected)
    assert row["low"] <= row["x"] <= row["high"]


def test_missing_sesoi_keeps_the_row_without_an_interval():
    c = claim(0.3, 0.2, 0.4)
    c["decision"]["sesoi"] = 0.0
    (row,) = forest.rows([c])
    assert row["x"] is None and row["label"] == "c"
    png_bytes(forest.figure([row]))  # still draws


def _rows_drawn(fig):
    """(y, colour) of each drawn interval segment (two x points, one y), top row first."""
    ax = fig.axes[0]
    segments = [(line.get_ydata()[0], to_hex(line.get_color())) for line in ax.get_lines()
                if len(line.get_xdata()) == 2 and line.get_ydata()[0] == line.get_ydata()[1]
                and line.get_linestyle() == "-" and line.get_linewidth() == 2.0]
    return sorted(segments, reverse=True)


def test_coloured_by_verdict_and_labelled_by_claim():
    claims = [claim(0.3, 0.2, 0.4, id="sup"), claim(-0.3, -0.4, -0.2, p=1.0, p_ref=0.001, id="ref"),
              claim(0.05, -0.1, 0.2, p=0.3, id="inc")]
    rows = forest.rows(claims)
    assert [r["verdict"] for r in rows] == ["inconclusive", "refuted", "supported"]  # by id: inc, ref, sup
    fig = forest.figure(rows)
    drawn = _rows_drawn(fig)
    assert [c for _, c in drawn] == [forest.COLOURS[r["verdict"]] for r in rows]
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert labels == [f"{r['id']} · tiny (sup)" for r in reversed(rows)]  # bottom-up on the axis


def test_reference_lines_at_zero_and_the_sesoi():
    fig = forest.figure(forest.rows([claim(0.3, 0.2, 0.4)]))
    verticals = sorted(line.get_xdata()[0] for line in fig.axes[0].get_lines()
                       if len(set(line.get_xdata())) == 1 and tuple(line.get_ydata()) == (0, 1))
    assert verticals == [-1.0, 0.0, 1.0]


def test_a_huge_effect_is_clipped_not_flattening_the_rest():
    rows = forest.rows([claim(5.0, 4.0, 6.0, id="huge"), claim(0.15, 0.05, 0.25, id="small")])
    fig = forest.figure(rows)
    assert fig.axes[0].get_xlim() == (-forest.LIMIT, forest.LIMIT)
    markers = [line.get_marker() for line in fig.axes[0].get_lines()]
    assert ">" in markers  # the interval runs off the right edge


def test_no_primaries_no_plot():
    doc = build.assemble([result("dups_more_responsive", "interleaved")], PROVENANCE)
    assert doc["forest"] == {"rows": [], "png": None}
    assert "No primary results in this report." in build.render(doc)


@pytest.mark.parametrize("bad", [[], {"rows": 1}, {"rows": [{"label": 1, "scale": "tiny"}]},
                                 {"rows": [], "png": 5}])
def test_check_refuses_a_malformed_forest(bad):
    with pytest.raises(ValueError, match="'forest' must be"):
        forest.check(bad)
    forest.check(None)
    forest.check({"rows": [], "png": None})
