"""Confusion-matrix segmentation metrics for N-dimensional label maps.

All metrics come from a ``(C, C)`` confusion matrix ``M[true, pred]`` of pixel counts, so dataset-level
numbers are exact (pixels pooled over the whole set) and per-image numbers use the same formulas on each
image's own matrix. A class that appears in neither the target nor the prediction has an undefined IoU
and Dice (0/0): it is reported as NaN and left out of means, never counted as 0 or 1. Background
(class 0 by convention) is included in the means unless ``include_background=False``; the report says
which.
"""

from __future__ import annotations

import math

import torch


def confusion_matrix(pred: torch.Tensor, target: torch.Tensor, num_classes: int,
                     ignore_index: int | None = None) -> torch.Tensor:
    """Pixel confusion matrix ``(C, C)`` (int64), rows = true class, columns = predicted class.

    Args:
        pred: predicted class indices, any shape.
        target: true class indices, same shape as ``pred``.
        num_classes: ``C``.
        ignore_index: target value whose pixels are skipped.
    """
    if pred.shape != target.shape:
        raise ValueError(f"pred {tuple(pred.shape)} and target {tuple(target.shape)} must have the same shape")
    pred, target = pred.reshape(-1).long(), target.reshape(-1).long()
    if ignore_index is not None:
        keep = target != ignore_index
        pred, target = pred[keep], target[keep]
    idx = target * num_classes + pred
    return torch.bincount(idx, minlength=num_classes * num_classes).reshape(num_classes, num_classes).cpu()


def per_image_confusion(pred: torch.Tensor, target: torch.Tensor, num_classes: int,
                        ignore_index: int | None = None) -> torch.Tensor:
    """One confusion matrix per batch item: ``pred, target (B, *S)`` -> ``(B, C, C)``."""
    b = pred.shape[0]
    pred, target = pred.reshape(b, -1).long(), target.reshape(b, -1).long()
    offsets = torch.arange(b, device=pred.device).unsqueeze(1) * num_classes * num_classes  # (B, 1)
    idx = target * num_classes + pred + offsets                                             # (B, N)
    if ignore_index is not None:
        idx = idx[target != ignore_index]
    counts = torch.bincount(idx.reshape(-1), minlength=b * num_classes * num_classes)
    return counts.reshape(b, num_classes, num_classes).cpu()


def _tp_fp_fn(cm: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    cm = cm.double()
    tp = cm.diagonal(dim1=-2, dim2=-1)           # (..., C)
    fp = cm.sum(-2) - tp                         # predicted as c, truly other
    fn = cm.sum(-1) - tp                         # truly c, predicted other
    return tp, fp, fn


def iou_per_class(cm: torch.Tensor) -> torch.Tensor:
    """Jaccard index ``TP / (TP + FP + FN)`` per class; NaN where the class is absent from both."""
    tp, fp, fn = _tp_fp_fn(cm)
    den = tp + fp + fn
    return torch.where(den > 0, tp / den.clamp_min(1), torch.full_like(den, math.nan))


def dice_per_class(cm: torch.Tensor) -> torch.Tensor:
    """Dice (F1) ``2 TP / (2 TP + FP + FN)`` per class; NaN where the class is absent from both."""
    tp, fp, fn = _tp_fp_fn(cm)
    den = 2 * tp + fp + fn
    return torch.where(den > 0, 2 * tp / den.clamp_min(1), torch.full_like(den, math.nan))


def pixel_accuracy(cm: torch.Tensor) -> torch.Tensor:
    """Fraction of correctly labelled pixels (misleading alone: all-background scores high)."""
    cm = cm.double()
    total = cm.sum((-2, -1))
    return cm.diagonal(dim1=-2, dim2=-1).sum(-1) / total.clamp_min(1)


def _nanmean(x: torch.Tensor, include_background: bool) -> torch.Tensor:
    if not include_background:
        x = x[..., 1:]
    return torch.nanmean(x, dim=-1)


def summarize(cm: torch.Tensor, class_names: list[str] | None = None, include_background: bool = True) -> dict:
    """Dataset-level metrics from one ``(C, C)`` matrix as plain floats.

    Keys: ``miou``, ``mdice``, ``pixel_acc``, ``iou_<name>``, ``dice_<name>``.
    """
    c = cm.shape[-1]
    names = class_names or [str(i) for i in range(c)]
    iou, dice = iou_per_class(cm), dice_per_class(cm)
    out = {"miou": float(_nanmean(iou, include_background)), "mdice": float(_nanmean(dice, include_background)),
           "pixel_acc": float(pixel_accuracy(cm))}
    for i, name in enumerate(names):
        out[f"iou_{name}"] = float(iou[i])
        out[f"dice_{name}"] = float(dice[i])
    return out


class SegmentationMeter:
    """Accumulates dataset-level and per-image confusion matrices over batches.

    Args:
        num_classes: ``C``.
        include_background: whether class 0 enters mean IoU / mean Dice.
        ignore_index: target value whose pixels are skipped.
    """

    def __init__(self, num_classes: int, include_background: bool = True, ignore_index: int | None = None):
        self.num_classes = num_classes
        self.include_background = include_background
        self.ignore_index = ignore_index
        self.total = torch.zeros(num_classes, num_classes, dtype=torch.int64)
        self.images: list[torch.Tensor] = []

    def update(self, pred: torch.Tensor, target: torch.Tensor) -> None:
        """``pred, target (B, *S)`` class indices."""
        per = per_image_confusion(pred, target, self.num_classes, self.ignore_index)  # (B, C, C)
        self.total += per.sum(0)
        self.images.extend(per.unbind(0))

    def per_image(self) -> dict[str, torch.Tensor]:
        """Per-image ``miou``, ``mdice``, ``pixel_acc`` (each ``(N,)``) and ``iou`` ``(N, C)``."""
        if not self.images:
            empty = torch.zeros(0, dtype=torch.float64)
            return {"miou": empty, "mdice": empty, "pixel_acc": empty, "iou": empty.reshape(0, self.num_classes)}
        cms = torch.stack(self.images)                                               # (N, C, C)
        iou, dice = iou_per_class(cms), dice_per_class(cms)                          # (N, C)
        return {"miou": _nanmean(iou, self.include_background), "mdice": _nanmean(dice, self.include_background),
                "pixel_acc": pixel_accuracy(cms), "iou": iou}

    def compute(self, class_names: list[str] | None = None) -> dict:
        """Dataset-level summary plus the mean of per-image mIoU (``miou_per_image``)."""
        out = summarize(self.total, class_names, self.include_background)
        per = self.per_image()["miou"]
        out["miou_per_image"] = float(torch.nanmean(per)) if per.numel() else math.nan
        return out


def classification_metrics(y_true, y_pred, classes: list[str]) -> dict:
    """Accuracy, per-class precision/recall/F1/support, macro averages, confusion matrix, most-confused pairs.

    Args:
        y_true, y_pred: int ``(N,)`` arrays.
    """
    import numpy as np

    t = np.asarray(y_true, dtype=np.int64)
    p = np.asarray(y_pred, dtype=np.int64)
    k = len(classes)
    cm = np.bincount(t * k + p, minlength=k * k).reshape(k, k)  # rows: true, cols: predicted
    tp = np.diag(cm).astype(float)
    support = cm.sum(1)
    precision = np.divide(tp, cm.sum(0), out=np.zeros(k), where=cm.sum(0) > 0)
    recall = np.divide(tp, support, out=np.zeros(k), where=support > 0)
    f1 = np.divide(2 * precision * recall, precision + recall, out=np.zeros(k), where=(precision + recall) > 0)
    per_class = [{"class": classes[i], "precision": float(precision[i]), "recall": float(recall[i]),
                  "f1": float(f1[i]), "support": int(support[i])} for i in range(k)]
    off = [(int(cm[i, j] + cm[j, i]), i, j) for i in range(k) for j in range(i + 1, k) if cm[i, j] + cm[j, i] > 0]
    pairs = [{"a": classes[i], "b": classes[j], "a_as_b": int(cm[i, j]), "b_as_a": int(cm[j, i]), "total": n}
             for n, i, j in sorted(off, reverse=True)[:5]]
    return {"accuracy": float(tp.sum() / max(1, len(t))), "macro_precision": float(precision.mean()),
            "macro_recall": float(recall.mean()), "macro_f1": float(f1.mean()), "per_class": per_class,
            "confusion": cm.tolist(), "most_confused": pairs, "n": int(len(t))}
