"""Segmentation losses for N-dimensional logits: cross-entropy, soft Dice (Milletari et al., 2016), CE+Dice.

Logits are ``(B, C, *S)`` and targets are class indices ``(B, *S)`` (int64). Every loss computes in
float32 even under bf16 autocast, because the Dice sums overflow bf16's precision.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

LOSSES = ("ce", "dice", "dice_ce")


def _weights(class_weights, num_classes: int, device) -> torch.Tensor | None:
    if class_weights is None:
        return None
    w = torch.as_tensor(class_weights, dtype=torch.float32, device=device)
    if w.numel() != num_classes:
        raise ValueError(f"class_weights has {w.numel()} entries but the logits have {num_classes} classes")
    return w


def cross_entropy(logits: torch.Tensor, target: torch.Tensor, class_weights=None,
                  ignore_index: int = -100) -> torch.Tensor:
    """Pixel-wise cross-entropy, mean over pixels (weighted mean when ``class_weights`` is given).

    Args:
        logits: ``(B, C, *S)`` unnormalised scores.
        target: ``(B, *S)`` class indices; pixels equal to ``ignore_index`` are skipped.
        class_weights: optional ``C`` weights (e.g. inverse class frequency).
    """
    w = _weights(class_weights, logits.shape[1], logits.device)
    return F.cross_entropy(logits.float(), target.long(), weight=w, ignore_index=ignore_index)


def soft_dice_per_class(logits: torch.Tensor, target: torch.Tensor, smooth: float = 1e-5,
                        ignore_index: int = -100) -> tuple[torch.Tensor, torch.Tensor]:
    """Soft Dice of softmax probabilities against one-hot targets, summed over the batch and space.

    Returns ``(dice, present)``: ``dice`` is ``(C,)`` with ``2 sum(p g) / (sum p + sum g)`` per class and
    ``present`` is a ``(C,)`` bool mask of the classes that occur in ``target``.
    """
    num_classes = logits.shape[1]
    probs = logits.float().softmax(dim=1)                                  # (B, C, *S)
    valid = target != ignore_index                                         # (B, *S)
    safe_target = torch.where(valid, target, torch.zeros_like(target)).long()
    onehot = F.one_hot(safe_target, num_classes).movedim(-1, 1).float()    # (B, C, *S)
    mask = valid.unsqueeze(1).float()                                      # (B, 1, *S)
    probs, onehot = probs * mask, onehot * mask
    dims = [0] + list(range(2, logits.ndim))
    intersection = (probs * onehot).sum(dims)                              # (C,)
    denominator = probs.sum(dims) + onehot.sum(dims)                       # (C,)
    dice = (2 * intersection + smooth) / (denominator + smooth)            # (C,)
    present = onehot.sum(dims) > 0                                         # (C,)
    return dice, present


def dice_loss(logits: torch.Tensor, target: torch.Tensor, class_weights=None, include_background: bool = True,
              smooth: float = 1e-5, ignore_index: int = -100) -> torch.Tensor:
    """``1 - Dice`` averaged over the classes present in the batch's targets.

    A class with no target pixel in the batch has no meaningful Dice (the ratio is 0/0, and a smoothed
    value would reward or punish arbitrarily), so it is left out of the mean; its false positives still
    cost through the present classes' denominators and through cross-entropy in ``dice_ce``.

    Args:
        logits: ``(B, C, *S)``.
        target: ``(B, *S)`` class indices.
        class_weights: optional ``C`` weights for a weighted mean over classes.
        include_background: whether class 0 counts.
    """
    dice, present = soft_dice_per_class(logits, target, smooth, ignore_index)
    w = _weights(class_weights, logits.shape[1], logits.device)
    w = torch.ones_like(dice) if w is None else w
    w = w * present.float()
    if not include_background:
        w = torch.cat([w.new_zeros(1), w[1:]])
    if float(w.sum()) == 0:
        return logits.float().sum() * 0.0  # nothing to score; keeps the graph for backward
    return ((1 - dice) * w).sum() / w.sum()


class SegmentationLoss(nn.Module):
    """``ce``, ``dice`` or ``dice_ce`` (``ce_weight * CE + dice_weight * Dice``), as one module.

    Shapes: ``logits (B, C, *S)``, ``target (B, *S)`` -> scalar.
    """

    def __init__(self, name: str = "dice_ce", class_weights=None, include_background: bool = True,
                 ce_weight: float = 1.0, dice_weight: float = 1.0, ignore_index: int = -100):
        super().__init__()
        if name not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {name!r}")
        self.name = name
        self.class_weights = None if class_weights is None else list(map(float, class_weights))
        self.include_background = include_background
        self.ce_weight, self.dice_weight = ce_weight, dice_weight
        self.ignore_index = ignore_index

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        loss = logits.new_zeros((), dtype=torch.float32)
        if self.name in ("ce", "dice_ce"):
            loss = loss + self.ce_weight * cross_entropy(logits, target, self.class_weights, self.ignore_index)
        if self.name in ("dice", "dice_ce"):
            loss = loss + self.dice_weight * dice_loss(logits, target, self.class_weights,
                                                       self.include_background, ignore_index=self.ignore_index)
        return loss
