"""Dice, HD95 and volume difference on hand-made volumes, and HD95 against a SciPy reference."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from neuralsight.engine.surface import case_metrics, dice, hausdorff, surface, volume_ml


def cube(shape, start, side):
    m = torch.zeros(shape, dtype=torch.bool)
    m[tuple(slice(s, s + side) for s in start)] = True
    return m


def test_cube_against_shifted_cube_by_hand():
    a = cube((10, 10, 10), (2, 2, 2), 4)
    b = cube((10, 10, 10), (4, 2, 2), 4)  # shifted 2 voxels along the first axis
    # overlap 2x4x4 = 32 voxels of 64 each: Dice = 2*32 / 128
    assert dice(a, b) == pytest.approx(0.5)
    # A 4-cube has 64 - 2^3 = 56 surface voxels.
    assert int(surface(a).sum()) == 56
    # From A's surface: the x=2 face (16 voxels) is 2 voxels from B's x=4 face, x=3 rim (12) is 1 away,
    # x=4 rim (12) lies on B's face, x=5 face: 12 rim voxels on B's rim, 4 interior ones 1 away.
    # Sorted 24 zeros, 16 ones, 16 twos: the 95th percentile (index 52.25 of 56) is 2 voxels.
    assert hausdorff(a, b) == pytest.approx(2.0)
    # The shift is along axis 0, whose voxels are 1.5 mm: 3 mm.
    assert hausdorff(a, b, spacing=(1.5, 1.0, 1.0)) == pytest.approx(3.0)
    # Median with 1.5 mm voxels: sorted 24 x 0, 4 x 1 (interior x=5, 1 mm sideways), 12 x 1.5, 16 x 3;
    # index 27.5 interpolates between 1.0 and 1.5.
    assert hausdorff(a, b, spacing=(1.5, 1.0, 1.0), percentile=50) == pytest.approx(1.25)
    m = case_metrics(a.long() * 1, b.long() * 1, 2, spacing=(2.0, 2.0, 2.0))[1]
    assert m["dice"] == pytest.approx(0.5)
    assert m["volume_true_ml"] == pytest.approx(64 * 8 / 1000)
    assert m["volume_diff_ml"] == pytest.approx(0.0)
    assert m["hd95"] == pytest.approx(4.0)


def test_empty_masks_are_nan_and_identical_masks_zero():
    a = cube((8, 8, 8), (1, 1, 1), 3)
    empty = torch.zeros_like(a)
    assert math.isnan(hausdorff(a, empty))
    assert math.isnan(dice(empty, empty))
    assert hausdorff(a, a) == 0.0 and dice(a, a) == 1.0
    bigger = cube((8, 8, 8), (1, 1, 1), 4)
    m = case_metrics(bigger.long(), a.long(), 2, (1.0, 1.0, 1.0))[1]
    assert m["volume_diff_ml"] == pytest.approx((64 - 27) / 1000)
    assert m["volume_diff_rel"] == pytest.approx((64 - 27) / 27)
    assert volume_ml(a, (1.0, 2.0, 0.5)) == pytest.approx(27 / 1000)


def _scipy_hd(a: np.ndarray, b: np.ndarray, spacing, q=95):
    """MONAI's definition: surfaces by binary erosion, distances by an exact Euclidean distance transform."""
    from scipy import ndimage

    def surf(m):
        return m & ~ndimage.binary_erosion(m, border_value=0)

    sa, sb = surf(a), surf(b)
    dab = ndimage.distance_transform_edt(~sb, sampling=spacing)[sa]
    dba = ndimage.distance_transform_edt(~sa, sampling=spacing)[sb]
    return max(np.percentile(dab, q), np.percentile(dba, q))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_hd95_matches_scipy_distance_transform(seed):
    pytest.importorskip("scipy")
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    a = ndimage.gaussian_filter(rng.random((20, 24, 18)), 2) > 0.5
    b = ndimage.gaussian_filter(rng.random((20, 24, 18)), 2) > 0.5
    spacing = (1.0, 0.7, 2.0)
    ours = hausdorff(torch.from_numpy(a), torch.from_numpy(b), spacing)
    assert ours == pytest.approx(_scipy_hd(a, b, spacing), rel=1e-6)
