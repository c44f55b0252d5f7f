"""The one vocabulary of convolution blocks: ConvBlock, make_norm, make_activation (CNN, U-Net, V-Net).

Every block takes ``spatial_dims`` (1, 2 or 3) and picks ``Conv1d/2d/3d``, the matching norm, dropout and
upsampling, as MONAI's single ``Convolution`` block serves its UNet and VNet alike
(``monai/networks/blocks/convolutions.py``). Tensors are ``(B, C, *spatial)``.

Names: a norm is ``"batch"``, ``"instance"``, ``"group"`` or ``None`` (no norm); an activation is one of
:data:`ACTIVATIONS` (torch's spellings: ``"leaky_relu"`` as in ``torch.nn.functional.leaky_relu``) or ``None``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

NORMS = ("batch", "instance", "group", None)
ACTIVATIONS = ("relu", "leaky_relu", "prelu", "elu", "gelu", "silu", "tanh", "sigmoid", None)
UP_MODES = ("transpose", "bilinear")
PADDINGS = ("same", "valid")


def _check_dims(spatial_dims: int) -> None:
    if spatial_dims not in (1, 2, 3):
        raise ValueError(f"spatial_dims must be 1, 2 or 3, got {spatial_dims!r}")


class Conv3d(nn.Conv3d):
    """``nn.Conv3d`` that computes in fp32 under CPU autocast when its input is smaller than the kernel along
    a spatial axis; everywhere else it is ``nn.Conv3d`` (same parameters, same state dict).

    Why: torch 2.13's CPU bf16 convolution returns wrong weight gradients there while the forward output
    and the input gradient are right. Measured on the 2-core AMD EPYC, 64->64 channels, 5x5x5 kernel,
    largest error relative to fp32 over 10-20 tries: 4x6x4 and 4x4x4 up to 1e36 or inf (garbage in 18 of
    20 tries at 4x6x4), 2x6x6 1.1; 6x4x6, 5x6x5 and 8x12x8 about 0.004 (bf16 rounding). The hippocampus V-Net's deepest level (patch 32x48x32,
    depth 3) is 4x6x4, so its gradient norm turned inf within a few steps: that was the "bf16 overflow".
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.device.type == "cpu" and torch.is_autocast_enabled("cpu") and \
                any(s < k for s, k in zip(x.shape[2:], self.kernel_size)):
            with torch.autocast("cpu", enabled=False):
                return super().forward(x.float())
        return super().forward(x)


def conv_nd(spatial_dims: int) -> type[nn.Module]:
    """``nn.Conv1d``, ``nn.Conv2d`` or :class:`Conv3d` (``nn.Conv3d``, safe under CPU bf16 autocast)."""
    _check_dims(spatial_dims)
    return (nn.Conv1d, nn.Conv2d, Conv3d)[spatial_dims - 1]


def conv_transpose_nd(spatial_dims: int) -> type[nn.Module]:
    _check_dims(spatial_dims)
    return (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)[spatial_dims - 1]


def max_pool_nd(spatial_dims: int) -> type[nn.Module]:
    _check_dims(spatial_dims)
    return (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d)[spatial_dims - 1]


def make_norm(norm: str | None, spatial_dims: int, channels: int, num_groups: int = 8) -> nn.Module:
    """A normalisation layer over ``channels``; ``None`` gives ``nn.Identity``.

    ``group`` uses ``min(num_groups, channels)`` groups, reduced until it divides ``channels``.
    """
    _check_dims(spatial_dims)
    if norm is None:
        return nn.Identity()
    if norm == "batch":
        return (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)[spatial_dims - 1](channels)
    if norm == "instance":
        return (nn.InstanceNorm1d, nn.InstanceNorm2d, nn.InstanceNorm3d)[spatial_dims - 1](channels, affine=True)
    if norm == "group":
        groups = min(num_groups, channels)
        while channels % groups:
            groups -= 1
        return nn.GroupNorm(groups, channels)
    raise ValueError(f"norm must be one of {NORMS} (None for no norm), got {norm!r}")


def make_activation(activation: str | None, channels: int = 1, inplace: bool = False) -> nn.Module:
    """An activation module by name; ``None`` gives ``nn.Identity``.

    Args:
        activation: one of :data:`ACTIVATIONS`. ``leaky_relu`` has torch's default slope 0.01.
        channels: channels of the input; ``prelu`` learns one slope per channel (V-Net uses it).
        inplace: overwrite the input (``relu``, ``leaky_relu``, ``elu``): saves one activation-sized
            tensor per block when the layer before does not need its output for the backward pass.
    """
    if activation is None:
        return nn.Identity()
    if activation == "relu":
        return nn.ReLU(inplace=inplace)
    if activation == "leaky_relu":
        return nn.LeakyReLU(inplace=inplace)
    if activation == "elu":
        return nn.ELU(inplace=inplace)
    if activation == "prelu":
        return nn.PReLU(channels)
    simple = {"gelu": nn.GELU, "silu": nn.SiLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid}
    if activation in simple:
        return simple[activation]()
    raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")


def make_dropout(spatial_dims: int, dropout: float) -> nn.Module:
    """Channel dropout (``DropoutNd``) when ``dropout > 0``, else identity."""
    if not dropout:
        return nn.Identity()
    return (nn.Dropout1d, nn.Dropout2d, nn.Dropout3d)[spatial_dims - 1](dropout)


class ConvBlock(nn.Sequential):
    """Convolution -> norm -> activation -> dropout: the one block of every conv net here.

    The children are always ``0`` conv, ``1`` norm, ``2`` activation, ``3`` dropout (identities where
    switched off), so parameter names do not depend on the options.

    Args:
        spatial_dims: 1, 2 or 3.
        in_channels: channels of the input ``(B, in_channels, *S)``.
        out_channels: channels of the output ``(B, out_channels, *S')``.
        kernel_size: kernel size (3 for U-Net and the CNN, 5 in V-Net stages, 2 for V-Net's resampling).
        norm: ``"batch"``, ``"instance"``, ``"group"`` or ``None``. With a norm the conv has no bias
            (the norm's shift would cancel it).
        activation: one of :data:`ACTIVATIONS`; ReLU-like ones run in place.
        dropout: channel dropout probability after the activation.
        stride: 2 gives a learned downsampling (V-Net's "down convolution") or, with ``transposed``,
            a learned 2x upsampling.
        padding: ``"same"`` pads ``(kernel_size - 1) // 2`` (MONAI's ``same_padding``): with stride 1 the
            output keeps ``S`` (the kernel must be odd), with stride ``s`` it is ``S / s`` for sizes
            divisible by ``s``. ``"valid"`` pads nothing: a k x k conv loses ``k - 1`` pixels per axis.
        transposed: a transposed convolution (the lecture's "deconvolution"); ``kernel_size = stride = 2``
            doubles every spatial size.
    """

    def __init__(self, spatial_dims: int, in_channels: int, out_channels: int, kernel_size: int = 3,
                 norm: str | None = "batch", activation: str | None = "relu", dropout: float = 0.0,
                 stride: int = 1, padding: str = "same", transposed: bool = False):
        if padding not in PADDINGS:
            raise ValueError(f"padding must be one of {PADDINGS}, got {padding!r}")
        if padding == "same" and stride == 1 and not transposed and kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd for 'same' padding, got {kernel_size}")
        conv_cls = conv_transpose_nd(spatial_dims) if transposed else conv_nd(spatial_dims)
        conv = conv_cls(in_channels, out_channels, kernel_size, stride=stride,
                        padding=(kernel_size - 1) // 2 if padding == "same" else 0, bias=norm is None)
        super().__init__(conv, make_norm(norm, spatial_dims, out_channels),
                         make_activation(activation, out_channels, inplace=True),
                         make_dropout(spatial_dims, dropout))


class DoubleConv(nn.Sequential):
    """Two :class:`ConvBlock` in a row: the unit of each U-Net level (Ronneberger et al., 2015).

    Shapes: ``(B, in_channels, *S) -> (B, out_channels, *S)``. Dropout follows the second block only.
    """

    def __init__(self, spatial_dims: int, in_channels: int, out_channels: int, kernel_size: int = 3,
                 norm: str | None = "batch", activation: str | None = "relu", dropout: float = 0.0):
        super().__init__(
            ConvBlock(spatial_dims, in_channels, out_channels, kernel_size, norm, activation),
            ConvBlock(spatial_dims, out_channels, out_channels, kernel_size, norm, activation, dropout),
        )


class Down(nn.Sequential):
    """Encoder step: 2x max pooling (halves every spatial size) then :class:`DoubleConv`.

    Shapes: ``(B, in_channels, *S) -> (B, out_channels, *S // 2)``.
    """

    def __init__(self, spatial_dims: int, in_channels: int, out_channels: int, kernel_size: int = 3,
                 norm: str | None = "batch", activation: str | None = "relu", dropout: float = 0.0):
        super().__init__(max_pool_nd(spatial_dims)(2),
                         DoubleConv(spatial_dims, in_channels, out_channels, kernel_size, norm, activation, dropout))


class UpSample(nn.Module):
    """Doubles every spatial size.

    ``mode="transpose"``: a learned transposed convolution, kernel 2 stride 2 (the lecture's
    "deconvolution"). ``mode="bilinear"``: (bi/tri)linear interpolation followed by a 1x1 convolution
    that sets the channel count (linear for 1D, bilinear for 2D, trilinear for 3D).

    Shapes: ``(B, in_channels, *S) -> (B, out_channels, *(2 * S))``.
    """

    def __init__(self, spatial_dims: int, in_channels: int, out_channels: int, mode: str = "transpose"):
        super().__init__()
        if mode not in UP_MODES:
            raise ValueError(f"up mode must be one of {UP_MODES}, got {mode!r}")
        self.mode = mode
        self.interp = ("linear", "bilinear", "trilinear")[spatial_dims - 1]
        if mode == "transpose":
            self.conv = conv_transpose_nd(spatial_dims)(in_channels, out_channels, kernel_size=2, stride=2)
        else:
            self.conv = conv_nd(spatial_dims)(in_channels, out_channels, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mode == "transpose":
            return self.conv(x)                                               # (B, out, *2S)
        x = F.interpolate(x, scale_factor=2, mode=self.interp, align_corners=False)  # (B, in, *2S)
        return self.conv(x)                                                   # (B, out, *2S)


def match_size(x: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Crop or zero-pad the trailing spatial dims of ``x`` to those of ``reference``."""
    spatial = x.ndim - 2
    pads: list[int] = []
    slices = [slice(None), slice(None)]
    for d in range(spatial):
        have, want = x.shape[2 + d], reference.shape[2 + d]
        slices.append(slice(0, min(have, want)))
    x = x[tuple(slices)]
    for d in reversed(range(spatial)):
        pads += [0, reference.shape[2 + d] - x.shape[2 + d]]
    return F.pad(x, pads) if any(pads) else x


class Up(nn.Module):
    """Decoder step: upsample, concatenate the encoder's skip connection, then :class:`DoubleConv`.

    Args:
        spatial_dims: 1, 2 or 3.
        in_channels: channels of the coarser decoder input.
        skip_channels: channels of the encoder feature map at the finer level.
        out_channels: output channels.
        up: ``"transpose"`` or ``"bilinear"`` (see :class:`UpSample`).

    Shapes: ``x (B, in_channels, *S)``, ``skip (B, skip_channels, *S2)`` with ``S2 ~ 2 S`` ->
    ``(B, out_channels, *S2)``.
    """

    def __init__(self, spatial_dims: int, in_channels: int, skip_channels: int, out_channels: int,
                 up: str = "transpose", kernel_size: int = 3, norm: str | None = "batch",
                 activation: str | None = "relu", dropout: float = 0.0):
        super().__init__()
        up_channels = in_channels // 2 if in_channels > 1 else in_channels
        self.up = UpSample(spatial_dims, in_channels, up_channels, up)
        self.conv = DoubleConv(spatial_dims, up_channels + skip_channels, out_channels, kernel_size, norm,
                               activation, dropout)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = match_size(self.up(x), skip)                 # (B, in/2, *S2)
        return self.conv(torch.cat([skip, x], dim=1))    # (B, out, *S2)
