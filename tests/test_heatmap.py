"""Heatmaps: robust row scaling, role strip and slice lines, readable labels, any two snapshots."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.image import AxesImage

from harness.heatmap import ROLE_COLOURS, plot_deltas, plot_diff, row_scales
from harness.plots import png_bytes
from harness.layermap import LayerEntry, LayerMap
from harness.measure.deltas import DeltaMatrix, weight_deltas
from harness.plots import PNG_MAGIC
from tests.test_deltas import DUPS, ORDER, SLICES, hand_layer_map, perturb, random_state, upscale_state


def image_of(fig) -> np.ma.MaskedArray:
    (ax,) = [a for a in fig.axes if any(isinstance(c, AxesImage) for c in a.get_images())
             and a.get_images()[0].get_array().shape[0] > 1]
    return ax.get_images()[0].get_array()


def matrix(values: np.ndarray, modules=("q_proj", "input_layernorm")) -> DeltaMatrix:
    return DeltaMatrix("rel", tuple(modules), tuple(range(values.shape[1])), values, {})


def test_one_huge_layer_does_not_wash_out_its_row():
    n = 40
    row = np.linspace(1.0, 2.0, n)
    row[0] = 1000.0  # the seed's layer-0 outlier
    fig = plot_deltas(matrix(np.vstack([row, np.full(n, 0.5)])))
    shown = image_of(fig)[0]
    assert shown[0] > 1.0  # the outlier is drawn in the "over" colour...
    assert shown[1:].min() == pytest.approx(row[1] / 2.0) and shown[1:].max() == pytest.approx(1.0)
    washed = image_of(plot_deltas(matrix(np.vstack([row, np.full(n, 0.5)])), scale="global"))[0]
    assert washed[1:].max() < 0.01  # what the seed's single scale does to the same row


def test_row_scales_ignore_undefined_cells_and_zero_rows():
    v = np.array([[np.nan, 1.0, 2.0, 3.0, 2.5, 1.5, 2.0, 2.2], [0.0] * 8, [np.nan] * 8,
                  [1.0] * 7 + [9.0], [1.0] * 4 + [2.0] * 4])
    # row 4: Q1 = Q3 = 1, fence 1 + 1.5 * 0.1 -> 9 is an outlier; row 5: fence 3.5 -> 2 is not
    assert row_scales(v).tolist() == [3.0, 1.0, 1.0, 1.0, 2.0]


def test_a_row_without_outliers_has_no_outlier_cells():
    values = 0.1 + 0.01 * np.random.default_rng(1).random((2, 8))
    shown = image_of(plot_deltas(matrix(values)))
    assert shown.max() == pytest.approx(1.0) and shown.min() > 0.85


def test_roles_and_slice_boundaries_are_drawn():
    up = upscale_state(random_state(6), ORDER, DUPS)
    lm = hand_layer_map(ORDER, DUPS, SLICES)
    fig = plot_deltas(weight_deltas(up, perturb(up)), metric="rel", layer_map=lm)
    strip = next(a for a in fig.axes if a.get_ylabel() == "role")
    codes = strip.get_images()[0].get_array()[0]
    assert codes.tolist() == [0, 0, 0, 0, 1, 1, 0, 0]
    xs = sorted({line.get_xdata()[0] for line in strip.get_lines()})
    assert xs == [3.5, 5.5]  # slice starts 4 and 6
    legend = [t.get_text() for t in strip.get_legend().get_texts()]
    assert set(ROLE_COLOURS) <= set(legend)
    heat = next(a for a in fig.axes if a is not strip and a.get_images())
    assert sorted({line.get_xdata()[0] for line in heat.get_lines()}) == [3.5, 5.5]
    shown = image_of(fig)
    assert shown.mask[3, 4] and shown.mask[3, 5]  # rel of the zeroed o_proj: undefined, grey


def test_labels_stay_readable_for_deep_models(tmp_path):
    n = 94  # the seed's 39B upscale
    lm = LayerMap(55, tuple(LayerEntry(i, i % 55, "dup" if 41 <= i < 85 else "orig",
                                       0 if i < 41 else 1 if i < 85 else 2, 0.0) for i in range(n)))
    values = np.random.default_rng(0).random((9, n))
    mods = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj",
            "input_layernorm", "post_attention_layernorm")
    fig = plot_deltas(DeltaMatrix("rel", mods, tuple(range(n)), values, {"lm_head": 0.1}), layer_map=lm)
    heat = next(a for a in fig.axes if a.get_ylabel() != "role" and a.get_images()
                and a.get_images()[0].get_array().shape == (9, n))
    labels = heat.get_xticklabels()
    assert [t.get_text() for t in labels] == [str(i) for i in range(n)]
    assert min(t.get_fontsize() for t in labels) >= 6
    width_px = fig.get_figwidth() * fig.dpi
    assert width_px / n >= 12  # at least 12 px per layer column
    assert png_bytes(fig).startswith(PNG_MAGIC)


def test_any_two_snapshots_make_a_rate_of_change_view():
    sd = random_state(2)
    e1 = perturb(sd, 0.01, seed=1)
    e2 = perturb(e1, 0.001, seed=2)
    fig = plot_diff(e1, e2, metric="l2", title="epoch 2 vs epoch 1")
    assert fig._suptitle.get_text() == "epoch 2 vs epoch 1"
    assert image_of(fig).shape == (9, 2)


def test_unknown_scale_is_refused():
    with pytest.raises(ValueError, match="scale must be"):
        plot_deltas(matrix(np.ones((2, 3))), scale="log")


def test_panels_share_one_robust_scale_per_module():
    """Issue 25: an upscale's panel and a control's compare by eye; one layer 0 sets no scale."""
    from harness.heatmap import shared_scales

    n = 20
    upscale = np.vstack([np.linspace(1.0, 2.0, n), np.full(n, 0.5)])
    upscale[0, 0] = 1000.0  # the card's layer-0 outlier
    control = np.vstack([np.full(n, 1.0), np.full(n, 0.25)])
    scales = shared_scales([matrix(upscale), matrix(control)], "rel")
    assert scales == {"q_proj": pytest.approx(2.0), "input_layernorm": pytest.approx(0.5)}
    up, ctl = (image_of(plot_deltas(matrix(v), scales=scales)) for v in (upscale, control))
    assert up[0, 0] > 1.0 and up[0, -1] == pytest.approx(1.0)  # the outlier is over, the rest is not washed out
    assert ctl[0, 0] == pytest.approx(0.5) and ctl[1, 0] == pytest.approx(0.5)  # the control at half, by eye
    with pytest.raises(ValueError, match=r"no scale for modules \['input_layernorm'\]"):
        plot_deltas(matrix(upscale), scales={"q_proj": 1.0})
