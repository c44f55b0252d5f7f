"""Pooling (average, max and min) for 1D/2D/3D signals, and rank (median) filters.

Min pooling is what ``torch.nn`` lacks: ``min(x) = -max(-x)``, so it reuses the max-pool kernels (and
their gradient, which flows to the arg-min of each window). :class:`Pool` is one layer for all three
modes and all three dimensionalities, like MONAI's ``spatial_dims`` blocks.

Rank filters (median, min, max, any percentile) slide a window with stride 1 (or more) and pick the
k-th smallest value; with ``padding`` they match ``scipy.ndimage``'s boundary modes.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

POOL_MODES = ("avg", "max", "min")
# scipy.ndimage boundary mode -> how an out-of-range index maps back into [0, n)
PAD_MODES = ("reflect", "mirror", "nearest", "wrap", "constant")


def _tuple(value, n: int, name: str) -> tuple[int, ...]:
    if isinstance(value, int):
        return (value,) * n
    value = tuple(int(v) for v in value)
    if len(value) != n:
        raise ValueError(f"{name} must be an int or {n} ints for spatial_dims={n}, got {value}")
    return value


def pool(x: torch.Tensor, mode: str, kernel_size, stride=None, spatial_dims: int = 2,
         padding=0, ceil_mode: bool = False) -> torch.Tensor:
    """Pool the last ``spatial_dims`` axes of ``x``.

    Args:
        x: ``(B, C, *spatial)`` (``(C, *spatial)`` also works).
        mode: ``"avg"``, ``"max"`` or ``"min"``.
        kernel_size: window size, an int or one per spatial axis.
        stride: step between windows (default: ``kernel_size``, i.e. non-overlapping).
        spatial_dims: 1, 2 or 3.
        padding: implicit padding; ``-inf`` for max, ``+inf`` for min, zeros (not counted) for avg.
        ceil_mode: keep a last partial window.

    Returns:
        ``(B, C, *out)`` with ``out = floor((n + 2*padding - kernel_size) / stride) + 1`` per axis.
    """
    if mode not in POOL_MODES:
        raise ValueError(f"pool mode must be one of {POOL_MODES}, got {mode!r}")
    if spatial_dims not in (1, 2, 3):
        raise ValueError(f"spatial_dims must be 1, 2 or 3, got {spatial_dims}")
    stride = kernel_size if stride is None else stride
    if mode == "avg":
        fn = (F.avg_pool1d, F.avg_pool2d, F.avg_pool3d)[spatial_dims - 1]
        return fn(x, kernel_size, stride, padding, ceil_mode=ceil_mode, count_include_pad=False)
    fn = (F.max_pool1d, F.max_pool2d, F.max_pool3d)[spatial_dims - 1]
    if mode == "max":
        return fn(x, kernel_size, stride, padding, ceil_mode=ceil_mode)
    return -fn(-x, kernel_size, stride, padding, ceil_mode=ceil_mode)  # min pooling


class Pool(nn.Module):
    """Average, max or min pooling over 1, 2 or 3 spatial axes.

    Args:
        mode: ``"avg"``, ``"max"`` or ``"min"``.
        kernel_size: window size (int or tuple); the lecture's 2x2 halves the resolution.
        stride: window step (default ``kernel_size``).
        spatial_dims: 1 (signals ``(B, C, L)``), 2 (images ``(B, C, H, W)``) or 3 (volumes).
        padding: implicit padding per side.

    Example:
        >>> Pool("min", 2)(torch.arange(16.).view(1, 1, 4, 4)).flatten().tolist()
        [0.0, 2.0, 8.0, 10.0]
    """

    def __init__(self, mode: str = "max", kernel_size=2, stride=None, spatial_dims: int = 2, padding=0):
        super().__init__()
        if mode not in POOL_MODES:
            raise ValueError(f"pool mode must be one of {POOL_MODES}, got {mode!r}")
        if spatial_dims not in (1, 2, 3):
            raise ValueError(f"spatial_dims must be 1, 2 or 3, got {spatial_dims}")
        self.mode = mode
        self.kernel_size = kernel_size
        self.stride = kernel_size if stride is None else stride
        self.spatial_dims = spatial_dims
        self.padding = padding

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return pool(x, self.mode, self.kernel_size, self.stride, self.spatial_dims, self.padding)

    def extra_repr(self) -> str:
        return (f"mode={self.mode!r}, kernel_size={self.kernel_size}, stride={self.stride}, "
                f"spatial_dims={self.spatial_dims}")


def _boundary_index(n: int, before: int, after: int, mode: str, device) -> torch.Tensor:
    """Indices into ``[0, n)`` for positions ``-before .. n+after-1`` under a scipy.ndimage boundary mode."""
    idx = torch.arange(-before, n + after, device=device)
    if mode == "nearest":
        return idx.clamp(0, n - 1)
    if mode == "wrap":
        return idx.remainder(n)
    if mode == "reflect":  # d c b a | a b c d | d c b a  (half-sample symmetric)
        m = idx.remainder(2 * n)
        return torch.where(m >= n, 2 * n - 1 - m, m)
    if mode == "mirror":  # d c b | a b c d | c b a  (whole-sample symmetric)
        if n == 1:
            return torch.zeros_like(idx)
        m = idx.remainder(2 * n - 2)
        return torch.where(m >= n, 2 * n - 2 - m, m)
    raise ValueError(f"padding mode must be one of {PAD_MODES}, got {mode!r}")


def pad_like_scipy(x: torch.Tensor, pads: list[tuple[int, int]], mode: str = "reflect",
                   value: float = 0.0) -> torch.Tensor:
    """Pad the last ``len(pads)`` axes of ``x`` the way ``scipy.ndimage`` extends borders.

    Args:
        x: any tensor; the last ``len(pads)`` axes are padded.
        pads: ``(before, after)`` per padded axis, in axis order.
        mode: ``reflect`` (scipy's default), ``mirror``, ``nearest``, ``wrap`` or ``constant``.
        value: fill for ``constant``.
    """
    nd = len(pads)
    if mode == "constant":
        flat = [p for before_after in reversed(pads) for p in before_after]
        return F.pad(x, flat, value=value)
    for axis, (before, after) in enumerate(pads):
        dim = x.ndim - nd + axis
        idx = _boundary_index(x.shape[dim], before, after, mode, x.device)
        x = x.index_select(dim, idx)
    return x


def rank_filter(x: torch.Tensor, kernel_size, rank: int, spatial_dims: int = 2, stride=1,
                padding: str | None = "reflect") -> torch.Tensor:
    """The ``rank``-th smallest value (0 = min) in each window over the last ``spatial_dims`` axes.

    Args:
        x: ``(..., *spatial)``.
        kernel_size: window size (int or tuple).
        rank: 0-based rank inside the sorted window; negative counts from the largest.
        spatial_dims: 1, 2 or 3.
        stride: output step (1 = a filter, kernel_size = a pooling).
        padding: a ``scipy.ndimage`` boundary mode giving an output the input's size (centred like
            scipy: window of output ``i`` starts at ``i - kernel_size // 2``), or ``None`` for valid.

    Returns:
        ``(..., *out)``: the input's size with padding and stride 1, else the valid/strided size.
    """
    ks = _tuple(kernel_size, spatial_dims, "kernel_size")
    st = _tuple(stride, spatial_dims, "stride")
    if padding is not None:
        x = pad_like_scipy(x, [(k // 2, k - 1 - k // 2) for k in ks], padding)
    for axis in range(spatial_dims):
        dim = x.ndim - spatial_dims + axis
        if x.shape[dim] < ks[axis]:
            raise ValueError(f"window {ks} is larger than the input {tuple(x.shape[-spatial_dims:])}")
    lead = x.ndim - spatial_dims
    for axis in range(spatial_dims):
        x = x.unfold(lead + axis, ks[axis], st[axis])  # appends the window axis at the end
    windows = x.reshape(*x.shape[: lead + spatial_dims], -1)  # (..., *out, prod(ks))
    size = windows.shape[-1]
    r = rank % size
    return windows.kthvalue(r + 1, dim=-1).values


def median_filter(x: torch.Tensor, kernel_size=3, spatial_dims: int = 2, stride=1,
                  padding: str | None = "reflect") -> torch.Tensor:
    """Median filter (rank ``size // 2``, as ``scipy.ndimage.median_filter``); removes salt-and-pepper noise."""
    ks = _tuple(kernel_size, spatial_dims, "kernel_size")
    size = 1
    for k in ks:
        size *= k
    return rank_filter(x, ks, size // 2, spatial_dims, stride, padding)
