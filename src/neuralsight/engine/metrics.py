"""Confusion-matrix metrics: segmentation (N-dimensional label maps), classification, bits per character.

All segmentation metrics come from a ``(C, C)`` confusion matrix ``M[true, pred]`` of pixel counts, so
dataset-level numbers are exact (pixels pooled over the whole set) and per-image numbers use the same
formulas on each image's own matrix. A class that appears in neither the target nor the prediction has an
undefined IoU and Dice (0/0): it is reported as NaN and left out of means, never counted as 0 or 1.
Background (class 0 by convention) is included in the means unless ``include_background=False``; the
report says which.

The binary foreground figure (``fg_iou``, ``fg_dice``) merges every non-background class into one
foreground class against background (class 0), as segmentation_models_pytorch scores Oxford-IIIT Pet
(pet + border vs background). It is computed from the merged pooled matrix (dataset level) and, beside
it, as the mean over images of each image's merged matrix.

Classification metrics (accuracy, per-class precision / recall / F1, macro means) come from the same kind
of matrix over samples; they agree with torchmetrics' ``Multiclass*`` metrics (``average=None`` and
``"macro"``), which the tests use as the oracle.
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


def merge_foreground(cm: torch.Tensor) -> torch.Tensor:
    """Merge classes ``1..C-1`` into one foreground class: ``(..., C, C)`` -> ``(..., 2, 2)``.

    Row/column 0 stay background; a pixel of one foreground class predicted as another foreground
    class counts as a true foreground pixel (pet predicted as border is still pet-vs-background right).
    """
    cm = cm.long()
    bg_bg = cm[..., 0, 0]
    bg_fg = cm[..., 0, 1:].sum(-1)                # background predicted foreground: FP
    fg_bg = cm[..., 1:, 0].sum(-1)                # foreground predicted background: FN
    fg_fg = cm[..., 1:, 1:].sum((-2, -1))         # TP
    return torch.stack([torch.stack([bg_bg, bg_fg], -1), torch.stack([fg_bg, fg_fg], -1)], -2)


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
        """Dataset-level summary, the binary foreground figures, and their per-image means.

        Keys beyond :func:`summarize`: ``fg_iou`` / ``fg_dice`` (classes ``1..C-1`` merged against class 0,
        from the pooled matrix), ``miou_per_image``, ``mdice_per_image``, ``fg_iou_per_image``,
        ``fg_dice_per_image`` (means over images; an image with no foreground in target or prediction has
        an undefined foreground IoU and is left out of that mean) and ``images``.
        """
        out = summarize(self.total, class_names, self.include_background)
        fg = merge_foreground(self.total)
        out["fg_iou"] = float(iou_per_class(fg)[1])
        out["fg_dice"] = float(dice_per_class(fg)[1])
        per = self.per_image()
        out["miou_per_image"] = _mean(per["miou"])
        out["mdice_per_image"] = _mean(per["mdice"])
        if self.images:
            fg_images = merge_foreground(torch.stack(self.images))                    # (N, 2, 2)
            out["fg_iou_per_image"] = _mean(iou_per_class(fg_images)[:, 1])
            out["fg_dice_per_image"] = _mean(dice_per_class(fg_images)[:, 1])
        else:
            out["fg_iou_per_image"] = out["fg_dice_per_image"] = math.nan
        out["images"] = len(self.images)
        return out


def _mean(values: torch.Tensor) -> float:
    """NaN-aware mean as a float; NaN when nothing is defined."""
    return float(torch.nanmean(values)) if values.numel() else math.nan


# ---- classification ---------------------------------------------------------------------------------

def classification_from_confusion(cm, classes: list[str]) -> dict:
    """Accuracy, per-class precision / recall / F1 / support, macro means and the most-confused pairs.

    Args:
        cm: ``(K, K)`` sample counts, rows = true class, columns = predicted class.
        classes: the ``K`` class names.

    A class never predicted has precision 0 and a class never present has recall 0 (torchmetrics'
    ``zero_division=0``). Macro means average over the classes that occur in the targets or the
    predictions (torchmetrics' convention); a class absent from both has no defined score and is left out.
    """
    cm = torch.as_tensor(cm, dtype=torch.int64).cpu()
    k = len(classes)
    if cm.shape != (k, k):
        raise ValueError(f"confusion matrix {tuple(cm.shape)} does not match {k} class names")
    tp = cm.diagonal().double()
    support, predicted = cm.sum(1).double(), cm.sum(0).double()
    precision = torch.where(predicted > 0, tp / predicted.clamp_min(1), torch.zeros_like(tp))
    recall = torch.where(support > 0, tp / support.clamp_min(1), torch.zeros_like(tp))
    pr = precision + recall
    f1 = torch.where(pr > 0, 2 * precision * recall / pr.clamp_min(1e-300), torch.zeros_like(tp))
    seen = (support + predicted) > 0
    n = int(cm.sum())

    def macro(x: torch.Tensor) -> float:
        return float(x[seen].mean()) if bool(seen.any()) else math.nan

    per_class = [{"class": classes[i], "precision": float(precision[i]), "recall": float(recall[i]),
                  "f1": float(f1[i]), "support": int(support[i])} for i in range(k)]
    c = cm.tolist()
    off = [(c[i][j] + c[j][i], i, j) for i in range(k) for j in range(i + 1, k) if c[i][j] + c[j][i] > 0]
    pairs = [{"a": classes[i], "b": classes[j], "a_as_b": c[i][j], "b_as_a": c[j][i], "total": total}
             for total, i, j in sorted(off, reverse=True)[:5]]
    return {"accuracy": float(tp.sum()) / n if n else math.nan, "macro_precision": macro(precision),
            "macro_recall": macro(recall), "macro_f1": macro(f1), "per_class": per_class,
            "confusion": c, "most_confused": pairs, "n": n}


def classification_metrics(y_true, y_pred, classes: list[str]) -> dict:
    """:func:`classification_from_confusion` of integer labels ``y_true, y_pred (N,)`` (tensors or arrays)."""
    t = torch.as_tensor(y_true).reshape(-1).long().cpu()
    p = torch.as_tensor(y_pred).reshape(-1).long().cpu()
    k = len(classes)
    for name, v in (("y_true", t), ("y_pred", p)):
        if v.numel() and (int(v.min()) < 0 or int(v.max()) >= k):
            raise ValueError(f"{name} holds labels outside 0..{k - 1} ({k} class names)")
    return classification_from_confusion(confusion_matrix(p, t, k), classes)


# ---- language models --------------------------------------------------------------------------------

def bits_per_char(nats_per_char: float) -> float:
    """Cross-entropy in bits per character from nats per character (divide by ln 2)."""
    return float(nats_per_char) / math.log(2)


def perplexity(nats_per_char: float) -> float:
    """``exp(loss)``, capped at ``exp(50)`` so a diverged model reports a large number, not an overflow."""
    return math.exp(min(float(nats_per_char), 50.0))
