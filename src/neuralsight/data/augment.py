"""On-device augmentation, one style for every task: a config dataclass of strengths and a function over a batch.

- 2D image + mask (segmentation): :class:`AugmentConfig`, :func:`augment`. One random affine matrix per
  sample (flips, scale + crop, small rotation, shift) applied with ``grid_sample``: bilinear for the image,
  nearest for the mask, so labels stay class indices; pixels pulled from outside the image become
  :data:`IGNORE` in the mask, so the loss skips them; then brightness and contrast jitter.
- 3D volume + label patches (segment3d): :class:`VolumeAugmentConfig`, :func:`augment_volumes`. Flips per
  axis, rotation about each axis with isotropic scaling by one ``grid_sample`` (trilinear image, nearest
  label), intensity scale and shift; each with a per-sample probability.
- 2D images alone (classification): :class:`FlipShiftConfig`, :func:`flip_and_shift`. Left-right flips and
  translations by whole pixels with zero fill (the background of Fashion-MNIST).

Every function keeps shapes and dtypes and runs on the batch's device. All randomness comes from the
global torch RNG (the training loop saves and restores it on resume).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from neuralsight.data.images import IGNORE


# ----------------------------------------------------------------------------------------------- 2D + mask
@dataclass
class AugmentConfig:
    """Strength of each 2D image + mask augmentation; zero switches it off."""

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
    """Augment a 2D image + mask batch on its device.

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


# ----------------------------------------------------------------------------------------------- 3D + label
@dataclass
class VolumeAugmentConfig:
    """Strength and per-sample probability of each 3D augmentation; a zero probability switches it off.

    Flips along ``flip_axes`` (each with ``flip_prob``); with ``spatial_prob`` a random rotation (up to
    ``rotate`` degrees about each axis) and isotropic scaling (``1 +- scale``) applied together; with
    ``intensity_prob`` the intensity ``x * (1 + s) + t``, ``s`` in ``+-intensity_scale``, ``t`` in
    ``+-intensity_shift``.
    """

    flip_prob: float = 0.5
    flip_axes: tuple[int, ...] = (0, 1, 2)
    spatial_prob: float = 0.2
    rotate: float = 15.0
    scale: float = 0.15
    intensity_prob: float = 0.5
    intensity_shift: float = 0.1
    intensity_scale: float = 0.1


def augment_volumes(images: torch.Tensor, labels: torch.Tensor,
                    cfg: VolumeAugmentConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """Augment a 3D patch batch on its device.

    Args:
        images: float ``(B, C, D, H, W)``.
        labels: long ``(B, D, H, W)`` class indices.
        cfg: strengths and probabilities.

    Returns:
        ``(images, labels)`` of the same shapes.
    """
    x, y = images, labels
    b = x.shape[0]
    dev = x.device
    if cfg.flip_prob > 0:
        for axis in cfg.flip_axes:
            flip = torch.rand(b, device=dev) < cfg.flip_prob                         # (B,)
            if flip.any():
                x = torch.where(flip.view(b, 1, 1, 1, 1), x.flip(2 + axis), x)
                y = torch.where(flip.view(b, 1, 1, 1), y.flip(1 + axis), y)
    if cfg.spatial_prob > 0 and (cfg.rotate > 0 or cfg.scale > 0):
        use = torch.rand(b, device=dev) < cfg.spatial_prob
        if use.any():
            theta = random_affines_3d(b, cfg.rotate, cfg.scale, dev)                 # (B, 3, 4)
            eye = torch.eye(3, 4, device=dev).expand(b, 3, 4)
            theta = torch.where(use.view(b, 1, 1), theta, eye)
            grid = F.affine_grid(theta, list(x.shape), align_corners=False)
            x = F.grid_sample(x.float(), grid, mode="bilinear", padding_mode="border", align_corners=False)
            y = F.grid_sample(y[:, None].float(), grid, mode="nearest", padding_mode="zeros",
                              align_corners=False)[:, 0].long()
    if cfg.intensity_prob > 0:
        use = (torch.rand(b, 1, 1, 1, 1, device=dev) < cfg.intensity_prob).float()
        s = (torch.rand(b, 1, 1, 1, 1, device=dev) * 2 - 1) * cfg.intensity_scale * use
        t = (torch.rand(b, 1, 1, 1, 1, device=dev) * 2 - 1) * cfg.intensity_shift * use
        x = x * (1 + s) + t
    return x, y


def random_affines_3d(batch: int, degrees: float, scale: float, device) -> torch.Tensor:
    """``(B, 3, 4)`` matrices: rotation about x, y, z by up to ``degrees`` times isotropic scaling."""
    a = (torch.rand(batch, 3, device=device) * 2 - 1) * math.radians(degrees)     # (B, 3)
    c, s = a.cos(), a.sin()
    one, zero = torch.ones(batch, device=device), torch.zeros(batch, device=device)

    def mat(rows):
        return torch.stack([torch.stack(r, -1) for r in rows], -2)                 # (B, 3, 3)

    rx = mat([[one, zero, zero], [zero, c[:, 0], -s[:, 0]], [zero, s[:, 0], c[:, 0]]])
    ry = mat([[c[:, 1], zero, s[:, 1]], [zero, one, zero], [-s[:, 1], zero, c[:, 1]]])
    rz = mat([[c[:, 2], -s[:, 2], zero], [s[:, 2], c[:, 2], zero], [zero, zero, one]])
    k = 1 + (torch.rand(batch, device=device) * 2 - 1) * scale                    # (B,)
    rot = rx @ ry @ rz / k.view(batch, 1, 1)
    return torch.cat([rot, torch.zeros(batch, 3, 1, device=device)], -1)           # (B, 3, 4)


# ----------------------------------------------------------------------------------------------- 2D images
@dataclass
class FlipShiftConfig:
    """Classification augmentation: left-right flips and whole-pixel shifts; zero switches each off."""

    hflip: float = 0.5           # probability of a left-right flip
    shift: int = 2               # max translation in pixels, each axis; the border fills with zeros


def flip_and_shift(images: torch.Tensor, cfg: FlipShiftConfig) -> torch.Tensor:
    """Random flips and translations by up to ``cfg.shift`` pixels, per image, on the batch's device.

    Args:
        images: float ``(B, C, H, W)``; zero is the background the shift brings in.

    Returns:
        ``(B, C, H, W)``.
    """
    x = images
    b, c, h, w = x.shape
    if cfg.hflip > 0:
        flip = torch.rand(b, device=x.device) < cfg.hflip                             # (B,)
        x = torch.where(flip[:, None, None, None], x.flip(-1), x)
    shift = int(cfg.shift)
    if shift > 0:
        padded = F.pad(x, (shift, shift, shift, shift))                                # (B, C, H+2s, W+2s)
        dy = torch.randint(0, 2 * shift + 1, (b, 1), device=x.device)
        dx = torch.randint(0, 2 * shift + 1, (b, 1), device=x.device)
        rows = (dy + torch.arange(h, device=x.device))[:, None, :, None].expand(b, c, h, w + 2 * shift)
        x = padded.gather(2, rows)                                                     # (B, C, H, W+2s)
        cols = (dx + torch.arange(w, device=x.device))[:, None, None, :].expand(b, c, h, w)
        x = x.gather(3, cols)                                                          # (B, C, H, W)
    return x
