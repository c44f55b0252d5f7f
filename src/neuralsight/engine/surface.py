"""Surface and volume metrics for 3D segmentation, in millimetres from the voxel spacing.

- **HD95**: the 95th percentile Hausdorff distance, ``max(P95(d(S_pred -> S_true)), P95(d(S_true -> S_pred)))``
  where ``S`` are the surface voxels (a voxel of the mask with a 6-neighbour outside it) and ``d`` is the
  Euclidean distance in mm to the nearest surface voxel of the other mask. This is MONAI's
  ``compute_hausdorff_distance(percentile=95)`` definition (surface by erosion, distances to the other
  surface); it is computed here with exact pairwise distances on the device instead of a distance
  transform (hippocampus surfaces have a few thousand voxels), so there is no SciPy at run time.
- **Volume difference**: predicted minus true volume in mL, and relative to the true volume.
- **Dice** per class and case from voxel counts.

Empty masks (never silently dropped):

- :func:`hausdorff` is the raw distance: NaN when either mask is empty (MONAI 1.6 returns NaN there too;
  MONAI before 1.3 returned inf).
- :func:`case_metrics` scores a structure that exists in exactly one of prediction and target (an empty
  prediction of a present structure, or a structure predicted where there is none) with Dice 0 and HD95
  equal to the volume's diagonal in mm (the largest distance two voxels of that volume can have), the
  penalty MONAI users substitute for MONAI's NaN/inf. It flags the case (``empty_pred``,
  ``empty_target``), and :func:`summarize_cases` counts those cases beside the means. When both are empty
  there is nothing to score: Dice and HD95 are NaN, the case is counted as ``absent`` and left out of that
  structure's means.
- Relative volume difference is NaN when the true mask is empty.
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def surface(mask):
    """Surface voxels of a boolean ``(D, H, W)`` mask: inside, with a 6-connected neighbour outside.

    Voxels on the volume border count as surface (outside the volume is background).
    """
    import torch.nn.functional as F

    m = mask.bool()
    padded = F.pad(m[None, None].float(), (1, 1, 1, 1, 1, 1))[0, 0]  # (D+2, H+2, W+2)
    core = padded[1:-1, 1:-1, 1:-1]
    eroded = core.clone()
    for axis in range(3):
        for shift in (0, 2):
            sl = [slice(1, -1)] * 3
            sl[axis] = slice(shift, shift + m.shape[axis])
            eroded = eroded * padded[tuple(sl)]
    return m & ~eroded.bool()


def _directed(points_a, points_b, chunk: int = 4096):
    """For each row of ``points_a`` ``(N, 3)`` the distance to the nearest row of ``points_b`` ``(M, 3)``."""
    import torch

    out = []
    for start in range(0, len(points_a), chunk):
        # The direct formula, not cdist's matmul shortcut: that one returns ~5e-7 mm for coincident
        # points, so identical surfaces would not score exactly 0.
        d = torch.cdist(points_a[start:start + chunk], points_b, compute_mode="donot_use_mm_for_euclid_dist")  # (n, M)
        out.append(d.min(1).values)
    return torch.cat(out)


def surface_distances(pred, target, spacing: Sequence[float] = (1.0, 1.0, 1.0)):
    """Distances (mm) from each surface voxel of ``pred`` to ``target``'s surface, and back.

    Returns ``(d_pred_to_true, d_true_to_pred)``, 1-D float64 tensors (empty when a mask is empty).
    """
    import torch

    sp = torch.tensor([float(s) for s in spacing], dtype=torch.float64, device=pred.device)
    a = surface(pred).nonzero().double() * sp  # (N, 3) mm
    b = surface(target).nonzero().double() * sp  # (M, 3) mm
    if len(a) == 0 or len(b) == 0:
        empty = torch.empty(0, dtype=torch.float64, device=pred.device)
        return empty, empty
    return _directed(a, b), _directed(b, a)


def hausdorff(pred, target, spacing: Sequence[float] = (1.0, 1.0, 1.0), percentile: float = 95.0) -> float:
    """Percentile Hausdorff distance in mm between two boolean ``(D, H, W)`` masks (NaN if either is empty)."""
    import torch

    d_ab, d_ba = surface_distances(pred.bool(), target.bool(), spacing)
    if len(d_ab) == 0:
        return math.nan
    q = percentile / 100.0
    return float(torch.maximum(torch.quantile(d_ab, q), torch.quantile(d_ba, q)))


def volume_diagonal_mm(shape: Sequence[int], spacing: Sequence[float]) -> float:
    """Largest distance (mm) between two voxel centres of a volume: ``|(shape - 1) * spacing|``."""
    return math.sqrt(sum(((int(n) - 1) * float(s)) ** 2 for n, s in zip(shape, spacing, strict=True)))


def volume_ml(mask, spacing: Sequence[float]) -> float:
    """Volume of a boolean mask in millilitres (1 mL = 1000 mm^3)."""
    return float(mask.bool().sum()) * math.prod(float(s) for s in spacing) / 1000.0


def dice(pred, target) -> float:
    """Dice of two boolean masks; NaN when both are empty."""
    p, t = pred.bool(), target.bool()
    denom = int(p.sum()) + int(t.sum())
    if denom == 0:
        return math.nan
    return 2.0 * int((p & t).sum()) / denom


def case_metrics(pred, target, num_classes: int, spacing: Sequence[float], percentile: float = 95.0,
                 surface_metrics: bool = True) -> dict:
    """Per-class metrics of one case, for classes 1..num_classes-1.

    Args:
        pred: ``(D, H, W)`` integer labels.
        target: ``(D, H, W)`` integer labels.
        num_classes: including background (class 0 is skipped).
        spacing: voxel size in mm.
        percentile: of the Hausdorff distance (95: HD95).
        surface_metrics: False skips HD95 (NaN), the slow part, e.g. for validation during training.

    Returns:
        ``{class_index: {"dice", "hd95", "empty_pred", "empty_target", "volume_pred_ml", "volume_true_ml",
        "volume_diff_ml", "volume_diff_rel"}}``. ``hd95`` is the volume diagonal when exactly one of the two
        masks is empty and NaN when both are (see the module docstring).
    """
    if pred.shape != target.shape:
        raise ValueError(f"pred {tuple(pred.shape)} and target {tuple(target.shape)} must have the same shape")
    diagonal = volume_diagonal_mm(target.shape, spacing)
    out = {}
    for c in range(1, num_classes):
        p, t = pred == c, target == c
        empty_pred, empty_target = not bool(p.any()), not bool(t.any())
        if not surface_metrics or (empty_pred and empty_target):
            hd = math.nan
        elif empty_pred or empty_target:
            hd = diagonal
        else:
            hd = hausdorff(p, t, spacing, percentile)
        vp, vt = volume_ml(p, spacing), volume_ml(t, spacing)
        out[c] = {"dice": dice(p, t), "hd95": hd, "empty_pred": empty_pred, "empty_target": empty_target,
                  "volume_pred_ml": vp, "volume_true_ml": vt, "volume_diff_ml": vp - vt,
                  "volume_diff_rel": (vp - vt) / vt if vt > 0 else math.nan}
    return out


def summarize_cases(per_case: Sequence[dict], class_names: Sequence[str]) -> dict:
    """Means over cases of :func:`case_metrics` results, with the counts that explain them.

    Args:
        per_case: one :func:`case_metrics` result per case.
        class_names: all class names, background first (index = class).

    Returns keys per structure ``<name>`` (classes 1..C-1): ``dice_<name>``, ``hd95_<name>`` (penalised
    cases included), ``abs_volume_diff_ml_<name>``, ``empty_pred_<name>`` (cases whose prediction is empty
    while the target is not), ``false_positive_cases_<name>`` (predicted where the target is empty),
    ``absent_<name>`` (empty in both: left out of that structure's means), ``cases_<name>`` (cases scored);
    and over structures: ``dice_mean`` and ``hd95_mean`` (mean of the structures' means), ``empty_pred``
    (total of ``empty_pred_<name>``) and ``cases``.
    """
    def mean(values: list[float]) -> float:
        values = [v for v in values if not math.isnan(v)]
        return sum(values) / len(values) if values else math.nan

    out: dict = {"cases": len(per_case)}
    dices, hds, empty_total = [], [], 0
    for c in range(1, len(class_names)):
        name = class_names[c]
        rows = [case[c] for case in per_case]
        scored = [r for r in rows if not (r["empty_pred"] and r["empty_target"])]
        out[f"dice_{name}"] = mean([r["dice"] for r in scored])
        out[f"hd95_{name}"] = mean([r["hd95"] for r in scored])
        out[f"abs_volume_diff_ml_{name}"] = mean([abs(r["volume_diff_ml"]) for r in rows])
        out[f"empty_pred_{name}"] = sum(r["empty_pred"] and not r["empty_target"] for r in rows)
        out[f"false_positive_cases_{name}"] = sum(r["empty_target"] and not r["empty_pred"] for r in rows)
        out[f"absent_{name}"] = len(rows) - len(scored)
        out[f"cases_{name}"] = len(scored)
        dices.append(out[f"dice_{name}"])
        hds.append(out[f"hd95_{name}"])
        empty_total += out[f"empty_pred_{name}"]
    out["dice_mean"] = mean(dices)
    out["hd95_mean"] = mean(hds)
    out["empty_pred"] = empty_total
    return out
