"""Transposed convolution ("deconvolution") written out step by step, as the lecture draws it.

A stride-``s`` transposed convolution is the scatter form of upsampling: every input pixel ``x[i, j]`` stamps a
copy of the kernel, scaled by its value, onto the output at ``(s*i, s*j)``; where stamps overlap (a kernel
larger than the stride) their values add. Cropping ``padding`` pixels from each border gives exactly
``torch.nn.functional.conv_transpose2d(x, kernel, stride=s, padding=p, output_padding=q)`` (tested), whose
output side is ``(n - 1) * s - 2p + k + q``. U-Net's and V-Net's decoders use ``k = s = 2`` (no overlap: each
pixel becomes a 2x2 block); the lecture's 3x3 stride-2 example shows the overlap sum.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class Stamp:
    """One input pixel's contribution: ``value * kernel`` placed at ``(row, col)`` of the uncropped canvas."""

    index: tuple[int, int]        # (i, j) of the input pixel
    value: float                  # x[i, j]
    origin: tuple[int, int]       # (s*i, s*j): the stamp's top-left corner on the canvas
    canvas: torch.Tensor          # (H_canvas, W_canvas): this stamp alone, zeros elsewhere


@dataclass
class TransposedSteps:
    stamps: list[Stamp]
    canvas: torch.Tensor          # (H_canvas, W_canvas): the sum of every stamp, before cropping
    overlap: torch.Tensor         # (H_canvas, W_canvas): how many stamps cover each canvas cell
    output: torch.Tensor          # (H_out, W_out): the canvas cropped by ``padding`` (conv_transpose2d's result)
    stride: int
    padding: int


def output_size(n: int, kernel_size: int, stride: int, padding: int = 0, output_padding: int = 0) -> int:
    """Side of a transposed convolution's output: ``(n - 1) * stride - 2 * padding + kernel_size + output_padding``."""
    return (n - 1) * stride - 2 * padding + kernel_size + output_padding


def transposed_steps(x: torch.Tensor, kernel: torch.Tensor, stride: int = 2, padding: int = 0,
                     output_padding: int = 0) -> TransposedSteps:
    """The transposed convolution of one image with one kernel, one stamp per input pixel.

    Args:
        x: ``(H, W)`` input.
        kernel: ``(kh, kw)`` kernel (not flipped: this is the scatter that conv_transpose2d computes).
        stride: step between stamps on the output (2 doubles the size).
        padding: pixels cropped from every border of the canvas.
        output_padding: extra rows/columns at the bottom/right (``< stride``), as in torch.

    Returns:
        :class:`TransposedSteps`; ``output`` is ``(H_out, W_out)`` with :func:`output_size` per axis.
    """
    if x.ndim != 2 or kernel.ndim != 2:
        raise ValueError(f"x and kernel must be 2D, got shapes {tuple(x.shape)} and {tuple(kernel.shape)}")
    if stride < 1 or padding < 0 or not 0 <= output_padding < stride:
        raise ValueError(f"need stride >= 1, padding >= 0 and 0 <= output_padding < stride, got "
                         f"{stride}, {padding}, {output_padding}")
    (h, w), (kh, kw) = x.shape, kernel.shape
    size = ((h - 1) * stride + kh + output_padding, (w - 1) * stride + kw + output_padding)
    if size[0] - 2 * padding < 1 or size[1] - 2 * padding < 1:
        raise ValueError(f"padding {padding} crops a {size[0]}x{size[1]} canvas to nothing")
    kernel = kernel.to(x.dtype)
    stamps = []
    canvas = torch.zeros(size, dtype=x.dtype)                     # (H_canvas, W_canvas)
    overlap = torch.zeros(size, dtype=torch.int64)
    for i in range(h):
        for j in range(w):
            r, c = i * stride, j * stride
            stamp = torch.zeros(size, dtype=x.dtype)
            stamp[r:r + kh, c:c + kw] = x[i, j] * kernel
            overlap[r:r + kh, c:c + kw] += 1
            canvas += stamp
            stamps.append(Stamp((i, j), float(x[i, j]), (r, c), stamp))
    output = canvas[padding:size[0] - padding, padding:size[1] - padding]
    return TransposedSteps(stamps, canvas, overlap, output, stride, padding)
