"""Surface and volume metrics for 3D segmentation, in millimetres from the voxel spacing.

- **HD95**: the 95th percentile Hausdorff distance, ``max(P95(d(S_pred -> S_true)), P95(d(S_true -> S_pred)))``
  where ``S`` are the surface voxels (a voxel of the mask with a 6-neighbour outside it) and ``d`` is the
  Euclidean distance in mm to the nearest surface voxel of the other mask. This is MONAI's
  ``compute_hausdorff_distance(percentile=95)`` definition (surface by erosion, distances to the other
  surface); it is computed here with exact pairwise distances on the device instead of a distance
  transform (hippocampus surfaces have a few thousand voxels), so there is no SciPy at run time.
- **Volume difference**: predicted minus true volume in mL, and relative to the true volume.
- **Dice** per class and case from voxel counts.

Undefined values are NaN: HD95 when either mask is empty, Dice when both are empty, relative volume
difference when the true mask is empty.
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
        d = torch.cdist(points_a[start:start + chunk], points_b)  # (n, M)
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


def case_metrics(pred, target, num_classes: int, spacing: Sequence[float], percentile: float = 95.0) -> dict:
    """Per-class metrics of one case, for classes 1..num_classes-1.

    Args:
        pred: ``(D, H, W)`` integer labels.
        target: ``(D, H, W)`` integer labels.
        num_classes: including background (class 0 is skipped).
        spacing: voxel size in mm.

    Returns:
        ``{class_index: {"dice", "hd95", "volume_pred_ml", "volume_true_ml", "volume_diff_ml",
        "volume_diff_rel"}}``.
    """
    out = {}
    for c in range(1, num_classes):
        p, t = pred == c, target == c
        vp, vt = volume_ml(p, spacing), volume_ml(t, spacing)
        out[c] = {"dice": dice(p, t), "hd95": hausdorff(p, t, spacing, percentile),
                  "volume_pred_ml": vp, "volume_true_ml": vt, "volume_diff_ml": vp - vt,
                  "volume_diff_rel": (vp - vt) / vt if vt > 0 else math.nan}
    return out
