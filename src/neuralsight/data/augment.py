"""On-device augmentation of image + mask batches (one affine warp per sample, then photometric jitter).

The geometric part (flips, scale + crop, small rotation) is one random affine matrix per sample applied
with ``grid_sample``: bilinear for the image, nearest for the mask, so labels stay class indices.
Pixels pulled from outside the image become :data:`IGNORE` in the mask, so the loss skips them. All
randomness comes from the global torch RNG (the training loop saves and restores it on resume).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from neuralsight.data.images import IGNORE


@dataclass
class AugmentConfig:
    """Strength of each augmentation; zero switches it off."""

    hflip: float = 0.5           # probability of a left-right flip
    vflip: float = 0.0           # probability of an up-down flip (medical slices, not pets)
    scale: float = 0.25          # zoom factor drawn from [1 - scale, 1 + scale]; > 1 crops
    rotate: float = 10.0         # max rotation in degrees
    translate: float = 0.05      # max shift as a fraction of the image size
    brightness: float = 0.15     # additive shift in units of the [0, 1] intensity range
    contrast: float = 0.15       # multiplicative factor drawn from [1 - contrast, 1 + contrast]


def affine_matrices(batch: int, cfg: AugmentConfig, device) -> torch.Tensor:
    """Random ``(B, 2, 3)`` sampling matrices (output -> input coordinates, ``affine_grid`` convention)."""
    def uniform(lo: float, hi: float) -> torch.Tensor:
        return torch.rand(batch, device=device) * (hi - lo) + lo

    angle = uniform(-cfg.rotate, cfg.rotate) * math.pi / 180
    zoom = uniform(1 - cfg.scale, 1 + cfg.scale)
    # Sampling coordinates shrink when zooming in, hence 1 / zoom.
    sx = torch.where(torch.rand(batch, device=device) < cfg.hflip, -1.0, 1.0) / zoom
    sy = torch.where(torch.rand(batch, device=device) < cfg.vflip, -1.0, 1.0) / zoom
    cos, sin = torch.cos(angle), torch.sin(angle)
    tx, ty = uniform(-cfg.translate, cfg.translate) * 2, uniform(-cfg.translate, cfg.translate) * 2
    theta = torch.stack([torch.stack([cos * sx, -sin * sy, tx], -1),
                         torch.stack([sin * sx, cos * sy, ty], -1)], 1)    # (B, 2, 3)
    return theta


def augment(images: torch.Tensor, masks: torch.Tensor, cfg: AugmentConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """Augment a batch on its device.

    Args:
        images: float ``(B, C, H, W)`` with intensities in [0, 1].
        masks: long ``(B, H, W)`` class indices (``IGNORE`` for unlabeled pixels).
        cfg: strengths.

    Returns:
        ``(images, masks)`` of the same shapes and dtypes.
    """
    b = images.shape[0]
    theta = affine_matrices(b, cfg, images.device)
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)            # (B, H, W, 2)
    images = F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    # Shift labels by one so zero padding marks "outside", then map it to IGNORE.
    shifted = (masks.float() + 1).unsqueeze(1)                                      # (B, 1, H, W)
    warped = F.grid_sample(shifted, grid, mode="nearest", padding_mode="zeros", align_corners=False)
    warped = warped.squeeze(1).round().long() - 1                                   # (B, H, W)
    masks = torch.where(warped < 0, torch.full_like(warped, IGNORE), warped)
    if cfg.contrast or cfg.brightness:
        shape = (b,) + (1,) * (images.ndim - 1)
        contrast = 1 + (torch.rand(shape, device=images.device) * 2 - 1) * cfg.contrast
        bright = (torch.rand(shape, device=images.device) * 2 - 1) * cfg.brightness
        mean = images.mean(dim=(1, 2, 3), keepdim=True)
        images = ((images - mean) * contrast + mean + bright).clamp(0, 1)
    return images, masks


def flip_shift(x, flip: bool, shift: int):
    """Random horizontal flips and translations by up to ``shift`` pixels, per image, on x's device.

    Args:
        x: float ``(B, C, H, W)``.
    """
    b, c, h, w = x.shape
    if flip:
        mask = torch.rand(b, device=x.device) < 0.5
        x = torch.where(mask[:, None, None, None], x.flip(-1), x)
    if shift > 0:
        padded = F.pad(x, (shift, shift, shift, shift))  # (B, C, H+2s, W+2s), zero = background
        dy = torch.randint(0, 2 * shift + 1, (b, 1), device=x.device)
        dx = torch.randint(0, 2 * shift + 1, (b, 1), device=x.device)
        rows = (dy + torch.arange(h, device=x.device))[:, None, :, None].expand(b, c, h, w + 2 * shift)
        x = padded.gather(2, rows)  # (B, C, H, W+2s)
        cols = (dx + torch.arange(w, device=x.device))[:, None, None, :].expand(b, c, h, w)
        x = x.gather(3, cols)  # (B, C, H, W)
    return x
