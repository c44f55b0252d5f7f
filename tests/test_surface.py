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


def _two_structures():
    """A (12, 12, 12) case with structure 1 predicted exactly and structure 2 half-overlapping."""
    target = torch.zeros(12, 12, 12, dtype=torch.long)
    target[cube((12, 12, 12), (1, 1, 1), 4)] = 1
    target[cube((12, 12, 12), (6, 6, 6), 4)] = 2
    pred = torch.zeros_like(target)
    pred[cube((12, 12, 12), (1, 1, 1), 4)] = 1
    pred[cube((12, 12, 12), (8, 6, 6), 4)] = 2        # shifted 2 voxels: overlap 32 of 64 -> Dice 0.5
    return pred, target


def test_per_class_dice_keeps_each_class_in_its_place():
    from neuralsight.engine.surface import summarize_cases

    pred, target = _two_structures()
    m = case_metrics(pred, target, 3, (1.0, 1.0, 1.0))
    assert m[1]["dice"] == 1.0 and m[1]["hd95"] == 0.0
    assert m[2]["dice"] == pytest.approx(0.5) and m[2]["hd95"] == pytest.approx(2.0)
    s = summarize_cases([m], ["background", "anterior", "posterior"])
    assert (s["dice_anterior"], s["dice_posterior"]) == (1.0, pytest.approx(0.5))
    assert s["hd95_posterior"] == pytest.approx(2.0) and s["dice_mean"] == pytest.approx(0.75)
    assert set(m) == {1, 2}                            # background is not a structure


def test_empty_prediction_counts_with_the_diagonal_penalty():
    from neuralsight.engine.surface import summarize_cases, volume_diagonal_mm

    pred, target = _two_structures()
    pred[pred == 2] = 0                                # structure 2 predicted empty
    spacing = (1.0, 2.0, 0.5)
    m = case_metrics(pred, target, 3, spacing)
    diagonal = math.sqrt((11 * 1.0) ** 2 + (11 * 2.0) ** 2 + (11 * 0.5) ** 2)
    assert volume_diagonal_mm((12, 12, 12), spacing) == pytest.approx(diagonal)
    assert m[2]["dice"] == 0.0 and m[2]["hd95"] == pytest.approx(diagonal) and m[2]["empty_pred"]
    good = case_metrics(target, target, 3, spacing)
    s = summarize_cases([m, good], ["background", "anterior", "posterior"])
    # the empty case is in the means (not dropped), and counted
    assert s["dice_posterior"] == pytest.approx(0.5)
    assert s["hd95_posterior"] == pytest.approx(diagonal / 2)
    assert s["empty_pred_posterior"] == 1 and s["empty_pred"] == 1 and s["cases_posterior"] == 2
    # a structure in neither prediction nor target: nothing to score, counted as absent
    absent = torch.zeros_like(target)
    a = case_metrics(absent, absent, 3, spacing)
    assert math.isnan(a[1]["dice"]) and math.isnan(a[1]["hd95"])
    s = summarize_cases([good, a], ["background", "anterior", "posterior"])
    assert s["absent_anterior"] == 1 and s["cases_anterior"] == 1 and s["dice_anterior"] == 1.0
    # predicted where the target is empty: penalised and counted as a false-positive case
    fp = case_metrics(target, absent, 3, spacing)
    assert fp[1]["dice"] == 0.0 and fp[1]["hd95"] == pytest.approx(diagonal)
    assert summarize_cases([fp], ["background", "anterior", "posterior"])["false_positive_cases_anterior"] == 1
    skipped = case_metrics(pred, target, 3, spacing, surface_metrics=False)
    assert math.isnan(skipped[1]["hd95"]) and skipped[1]["dice"] == 1.0


def _onehot(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    return torch.nn.functional.one_hot(labels, num_classes).movedim(-1, 0)[None].float()  # (1, C, D, H, W)


@pytest.mark.filterwarnings("ignore:the (prediction|ground truth) of class", "ignore::FutureWarning")
@pytest.mark.parametrize("seed", [0, 1])
def test_dice_and_hd95_match_monai(seed):
    pytest.importorskip("monai")
    from monai.metrics import compute_dice, compute_hausdorff_distance
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    field = ndimage.gaussian_filter(rng.random((2, 18, 20, 16)), 2)          # two smooth random fields
    noisy = field + ndimage.gaussian_filter(rng.random((2, 18, 20, 16)), 2) * 0.05
    def labels(f, threshold):
        return torch.from_numpy(np.where(f[0] > threshold, 1, np.where(f[1] > threshold, 2, 0)))
    target, pred = labels(field, 0.52), labels(noisy, 0.545)
    assert all(bool((m == c).any()) for m in (pred, target) for c in (1, 2))
    spacing = (1.0, 0.8, 1.6)
    ours = case_metrics(pred, target, 3, spacing)
    dice_ref = compute_dice(_onehot(pred, 3), _onehot(target, 3), include_background=False)[0]
    hd_ref = compute_hausdorff_distance(_onehot(pred, 3), _onehot(target, 3), include_background=False,
                                        percentile=95, spacing=spacing)[0]
    for c in (1, 2):
        assert ours[c]["dice"] == pytest.approx(float(dice_ref[c - 1]), abs=1e-6)
        assert ours[c]["hd95"] == pytest.approx(float(hd_ref[c - 1]), rel=1e-5)


@pytest.mark.filterwarnings("ignore:the (prediction|ground truth) of class", "ignore::FutureWarning")
def test_monai_convention_on_an_empty_prediction():
    """MONAI scores an empty prediction of a present structure Dice 0 and HD95 NaN; we substitute the diagonal."""
    pytest.importorskip("monai")
    from monai.metrics import compute_dice, compute_hausdorff_distance

    pred, target = _two_structures()
    pred[pred == 2] = 0
    dice_ref = compute_dice(_onehot(pred, 3), _onehot(target, 3), include_background=False)[0]
    hd_ref = compute_hausdorff_distance(_onehot(pred, 3), _onehot(target, 3), include_background=False,
                                        percentile=95)[0]
    ours = case_metrics(pred, target, 3, (1.0, 1.0, 1.0))
    assert float(dice_ref[1]) == ours[2]["dice"] == 0.0
    assert not math.isfinite(float(hd_ref[1]))        # NaN in MONAI 1.6, inf before 1.3
    assert ours[2]["hd95"] == pytest.approx(11 * math.sqrt(3))
    assert math.isnan(hausdorff(pred == 2, target == 2))  # the raw distance stays undefined
