"""U-Net (Ronneberger, Fischer and Brox, 2015) for 1D, 2D or 3D semantic segmentation.

An encoder halves the resolution ``depth`` times while doubling the channels, a decoder doubles it back
(transposed convolution, the lecture's "deconvolution", or linear interpolation), and skip connections
carry each encoder level's features to the decoder level of the same size. The network is fully
convolutional: any input size works, because ``forward`` pads to a multiple of ``2**depth`` and crops
the logits back.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from neuralsight.layers.blocks import NORMS, UP_MODES, DoubleConv, Down, Up, conv_nd
from neuralsight.models.registry import register_model


@register_model("unet")
class UNet(nn.Module):
    """U-Net returning per-pixel class logits, for 1D, 2D or 3D inputs of any size.

    Args:
        spatial_dims: 1, 2 or 3 (3 gives a volumetric U-Net; V-Net is built from the same ConvBlock).
        in_channels: input channels (3 for RGB photos, 1 for CT slices).
        num_classes: output channels, one logit per class (include background).
        depth: number of 2x downsamplings (the U has ``depth + 1`` levels).
        base_channels: channels of the first level; level ``i`` has ``base_channels * 2**i``.
        up: ``"transpose"`` (learned deconvolution) or ``"bilinear"`` (interpolation + 1x1 conv).
        norm: ``"batch"``, ``"instance"``, ``"group"`` or ``None``.
        dropout: channel dropout in the bottleneck level.
        kernel_size: convolution kernel size (odd).
        activation: activation name (see ``layers.blocks.ACTIVATIONS``).

    Shapes: ``(B, in_channels, *S) -> (B, num_classes, *S)`` for any ``S``.
    """

    def __init__(self, spatial_dims: int = 2, in_channels: int = 3, num_classes: int = 2, depth: int = 4,
                 base_channels: int = 32, up: str = "transpose", norm: str | None = "batch",
                 dropout: float = 0.0, kernel_size: int = 3, activation: str = "relu"):
        super().__init__()
        if depth < 1:
            raise ValueError(f"depth must be >= 1, got {depth}")
        if up not in UP_MODES:
            raise ValueError(f"up must be one of {UP_MODES}, got {up!r}")
        if norm not in NORMS:
            raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")
        self.spatial_dims = spatial_dims
        self.depth = depth
        self.num_classes = num_classes
        chans = [base_channels * 2**i for i in range(depth + 1)]
        self.stem = DoubleConv(spatial_dims, in_channels, chans[0], kernel_size, norm, activation)
        self.downs = nn.ModuleList(
            Down(spatial_dims, chans[i], chans[i + 1], kernel_size, norm, activation,
                 dropout if i == depth - 1 else 0.0)
            for i in range(depth))
        self.ups = nn.ModuleList(
            Up(spatial_dims, chans[i + 1], chans[i], chans[i], up, kernel_size, norm, activation)
            for i in reversed(range(depth)))
        self.head = conv_nd(spatial_dims)(chans[0], num_classes, kernel_size=1)

    def forward_features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Encoder feature maps, finest first: ``[(B, c0, *S), (B, c1, *S/2), ..., (B, cD, *S/2**D)]``.

        ``x`` must already have spatial sizes divisible by ``2**depth`` (``forward`` pads for you).
        """
        feats = [self.stem(x)]                      # (B, c0, *S)
        for down in self.downs:
            feats.append(down(feats[-1]))           # (B, c_{i+1}, *S / 2**(i+1))
        return feats

    @property
    def gradcam_layer(self) -> nn.Module:
        """The layer Grad-CAM reads: the bottleneck (the deepest, coarsest encoder level)."""
        return self.downs[-1]

    def forward_intermediates(self, x: torch.Tensor) -> list[tuple[str, torch.Tensor]]:
        """Every level's feature map, encoder down then decoder up: ``[("encoder 0", (B, c0, *S)), ...,
        ("bottleneck", (B, cD, *S/2**D)), ("decoder D-1", ...), ..., ("decoder 0", (B, c0, *S))]``.

        Decoder level ``i`` has read the skip connection of encoder level ``i`` (same size). ``x`` is padded
        to a multiple of ``2**depth`` as in ``forward``; the maps are not cropped back.
        """
        x = F.pad(x, [p for size in reversed(x.shape[2:]) for p in (0, (-size) % 2**self.depth)])
        feats = self.forward_features(x)
        out = [(f"encoder {i}" if i < self.depth else "bottleneck", f) for i, f in enumerate(feats)]
        y = feats[-1]
        for i, (up, skip) in enumerate(zip(self.ups, reversed(feats[:-1]), strict=True)):
            y = up(y, skip)                         # (B, c_i, *S/2**i)
            out.append((f"decoder {self.depth - 1 - i}", y))
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        spatial = tuple(x.shape[2:])
        if len(spatial) != self.spatial_dims:
            raise ValueError(f"UNet(spatial_dims={self.spatial_dims}) expects input (B, C, {'x'.join('S' * self.spatial_dims)}), "
                             f"got shape {tuple(x.shape)}")
        multiple = 2**self.depth
        pads: list[int] = []
        for size in reversed(spatial):              # F.pad lists the last dim first
            pads += [0, (-size) % multiple]
        if any(pads):
            x = F.pad(x, pads)                      # (B, C, *S_padded)
        feats = self.forward_features(x)
        y = feats[-1]                               # (B, cD, *S/2**D)
        for up, skip in zip(self.ups, reversed(feats[:-1]), strict=True):
            y = up(y, skip)                         # (B, c_i, *S/2**i)
        logits = self.head(y)                       # (B, num_classes, *S_padded)
        if any(pads):
            logits = logits[(slice(None), slice(None), *(slice(0, s) for s in spatial))]
        return logits                               # (B, num_classes, *S)

