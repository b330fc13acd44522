"""Robust z-scores: distance from the median in units of the scaled median absolute deviation.

z_i = (x_i - median) / (1.4826 * MAD), MAD = median |x - median|; 1.4826 makes the scale
equal the standard deviation for normal data, so |z| > 3 reads like a 3-sigma outlier
(Iglewicz & Hoaglin's modified z-score, up to that constant). When more than half the values
tie (MAD = 0), the scale falls back to 1.2533 * mean |x - median| (again the normal sd); if that
is 0 too (all values equal) every z is 0.

`reference`: where the centre and scale come from (default: the values themselves). For "are
layers 0-1 outliers?", pass the other layers as reference so the suspects cannot inflate the
scale they are measured in.
"""

from __future__ import annotations

import numpy as np

from harness.stats._validate import as_values

MAD_TO_SD = 1.4826
MEAN_AD_TO_SD = 1.2533


def robust_z(values, reference=None) -> np.ndarray:
    """Robust z-score of each value against the median/MAD of `reference` (default: values)."""
    x = as_values(values, "values", min_n=1)
    ref = x if reference is None else as_values(reference, "reference", min_n=1)
    centre = np.median(ref)
    dev = np.abs(ref - centre)
    scale = MAD_TO_SD * np.median(dev)
    if scale == 0:
        scale = MEAN_AD_TO_SD * dev.mean()
    if scale == 0:
        return np.zeros_like(x) if np.all(x == centre) else np.where(
            x == centre, 0.0, np.sign(x - centre) * np.inf
        )
    return (x - centre) / scale
