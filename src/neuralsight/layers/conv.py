"""Convolution as signal processing: 1D/2D convolution and correlation, classic kernels.

The learnable block of the conv nets (:class:`~neuralsight.layers.blocks.ConvBlock`) lives in ``blocks.py``.

Convolution vs correlation: ``torch.nn.functional.conv2d`` (and every deep-learning "convolution")
computes the cross-correlation ``y[i] = sum_k x[i + k] w[k]``. The textbook convolution flips the kernel,
``y[i] = sum_k x[i - k] w[k]``. :func:`convolve` does the true convolution by default (``flip=True``) and the
correlation with ``flip=False``; for symmetric kernels (box, Gaussian, Laplacian) they agree, for Sobel
they differ in sign. A learned network does not care: it learns the flipped kernel instead.

Modes follow ``scipy.signal``: ``valid`` (only full overlaps: a 3x3 kernel turns 28x28 into 26x26, the
size loss the lecture stresses), ``same`` (zero padding, output the input's size) and ``full``.
"""

from __future__ import annotations

import math
import re

import torch
import torch.nn.functional as F

MODES = ("valid", "same", "full")


def _pads(k: int, mode: str, flip: bool = True) -> tuple[int, int]:
    """Zero padding (before, after) along one axis for a kernel of size ``k``; centred like scipy.

    For even ``k`` the `same` window cannot be centred. We follow scipy: ``convolve2d`` puts the extra sample
    before the centre and ``correlate2d`` after it (``flip=False`` here); 1D ``scipy.signal.correlate``
    is convolution with the reversed kernel, so it keeps the convolution rule (the caller passes ``flip=True``).
    """
    if mode == "valid":
        return 0, 0
    if mode == "full":
        return k - 1, k - 1
    before = k // 2 if flip else (k - 1) // 2
    return before, k - 1 - before


def convolve(x: torch.Tensor, kernel: torch.Tensor, mode: str = "valid", stride: int = 1,
             flip: bool = True) -> torch.Tensor:
    """Convolve (``flip=True``) or correlate (``flip=False``) 1D signals or 2D images with one kernel.

    The kernel's number of axes decides 1D or 2D; the signal's leading axes are batch axes.

    Args:
        x: ``(..., L)`` for a 1D kernel or ``(..., H, W)`` for a 2D kernel.
        kernel: ``(k,)`` or ``(kh, kw)``.
        mode: ``valid``, ``same`` or ``full`` (as ``scipy.signal.convolve2d``).
        stride: keep every ``stride``-th output (as ``scipy_result[::stride, ::stride]``).
        flip: True for true convolution, False for cross-correlation (what ``torch`` computes).

    Returns:
        ``(..., L')`` or ``(..., H', W')``; for ``valid`` ``H' = floor((H - kh) / stride) + 1``.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    nd = kernel.ndim
    if nd not in (1, 2):
        raise ValueError(f"kernel must be 1D or 2D, got shape {tuple(kernel.shape)}")
    if x.ndim < nd:
        raise ValueError(f"a {nd}D kernel needs an input with at least {nd} axes, got {tuple(x.shape)}")
    lead = x.shape[:-nd]
    spatial = x.shape[-nd:]
    w = kernel.to(dtype=x.dtype, device=x.device)
    if flip:
        w = torch.flip(w, dims=tuple(range(nd)))
    xb = x.reshape(-1, 1, *spatial)  # (N, 1, *spatial)
    pads = [_pads(k, mode, flip or nd == 1) for k in w.shape]
    if mode == "valid" and any(s < k for s, k in zip(spatial, w.shape, strict=True)):
        raise ValueError(f"valid {tuple(w.shape)} convolution needs an input at least that large, got {tuple(spatial)}")
    flat = [p for before_after in reversed(pads) for p in before_after]
    xb = F.pad(xb, flat)
    fn = F.conv1d if nd == 1 else F.conv2d
    y = fn(xb, w[None, None], stride=stride)  # (N, 1, *out)
    return y.reshape(*lead, *y.shape[2:])


def output_size(n: int, kernel_size: int, mode: str = "valid", stride: int = 1) -> int:
    """Length of one axis after :func:`convolve`: ``valid`` 28 with 3 -> 26, ``same`` keeps 28."""
    before, after = _pads(kernel_size, mode)
    return (n + before + after - kernel_size) // stride + 1


# ---- classic kernels --------------------------------------------------------------------------------

def gaussian_kernel(sigma: float = 1.0, size: int | None = None) -> torch.Tensor:
    """Normalised 2D Gaussian ``(size, size)``; ``size`` defaults to ``2 * ceil(3 sigma) + 1``."""
    if sigma <= 0:
        raise ValueError(f"gaussian sigma must be > 0, got {sigma}")
    size = size or 2 * math.ceil(3 * sigma) + 1
    r = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(r**2) / (2 * sigma**2))
    k = torch.outer(g, g)
    return (k / k.sum()).float()


def box_kernel(size: int = 3) -> torch.Tensor:
    """Mean filter ``(size, size)`` of ``1 / size**2``."""
    return torch.full((size, size), 1.0 / size**2)


_FIXED = {
    "sobel_x": [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]],
    "sobel_y": [[-1, -2, -1], [0, 0, 0], [1, 2, 1]],
    "prewitt_x": [[-1, 0, 1], [-1, 0, 1], [-1, 0, 1]],
    "prewitt_y": [[-1, -1, -1], [0, 0, 0], [1, 1, 1]],
    "laplacian": [[0, 1, 0], [1, -4, 1], [0, 1, 0]],
    "sharpen": [[0, -1, 0], [-1, 5, -1], [0, -1, 0]],
    "emboss": [[-2, -1, 0], [-1, 1, 1], [0, 1, 2]],
}
KERNEL_NAMES = (*_FIXED, "gaussian", "box")
DEFAULT_KERNELS = ("sobel_x", "sobel_y", "prewitt_x", "laplacian", "gaussian", "box", "sharpen", "emboss")


def kernel(name: str) -> torch.Tensor:
    """A classic 2D kernel by name: ``sobel_x``, ``sobel_y``, ``prewitt_x``, ``prewitt_y``, ``laplacian``,
    ``sharpen``, ``emboss``, ``gaussian`` / ``gaussian:SIGMA``, ``box`` / ``box:SIZE``."""
    base, _, arg = name.partition(":")
    if base in _FIXED and not arg:
        return torch.tensor(_FIXED[base], dtype=torch.float32)
    try:
        if base == "gaussian":
            return gaussian_kernel(float(arg) if arg else 1.0)
        if base == "box":
            return box_kernel(int(arg) if arg else 3)
    except ValueError as err:
        raise ValueError(f"kernel '{name}': {err} (e.g. gaussian:1.5 or box:5)") from None
    raise ValueError(f"unknown kernel '{name}': choose from {', '.join(KERNEL_NAMES)} "
                     f"or give a matrix like '1,0,-1;2,0,-2;1,0,-1'")


_NUMBER = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?(/[-+]?\d+\.?\d*)?$")


def parse_kernel(spec: str) -> tuple[str, torch.Tensor]:
    """A kernel from a name (see :func:`kernel`) or a matrix string.

    Matrix strings: rows separated by ``;`` (or written as ``[[1,0,-1],[2,0,-2],[1,0,-1]]``), values by
    ``,`` or spaces; ``1/9`` fractions are allowed. A single row is a 1D kernel.

    Returns:
        ``(label, kernel)`` with kernel ``(kh, kw)`` or ``(k,)``.
    """
    text = spec.strip()
    if not any(c.isdigit() for c in text) or re.fullmatch(r"[a-z_]+(:\S*)?", text):
        return text, kernel(text)
    body = text.replace(" ", ",") if "[" not in text else text
    if "[" in body:
        rows = re.findall(r"\[([^\[\]]*)\]", body)
    else:
        rows = [r for r in body.split(";")]
    matrix = []
    for row in rows:
        vals = [v for v in re.split(r"[,\s]+", row.strip()) if v]
        out = []
        for v in vals:
            if not _NUMBER.match(v):
                raise ValueError(f"kernel '{spec}': '{v}' is not a number; write rows separated by ';' and "
                                 f"values by ',', e.g. '1,0,-1;2,0,-2;1,0,-1'")
            num, _, den = v.partition("/")
            out.append(float(num) / float(den) if den else float(num))
        matrix.append(out)
    if not matrix or not matrix[0]:
        raise ValueError(f"kernel '{spec}' is empty; write e.g. '1,0,-1;2,0,-2;1,0,-1'")
    if len({len(r) for r in matrix}) != 1:
        raise ValueError(f"kernel '{spec}' has rows of different lengths {[len(r) for r in matrix]}; "
                         f"every row needs the same number of values")
    t = torch.tensor(matrix, dtype=torch.float32)
    label = "custom " + "x".join(str(s) for s in t.shape)
    return label, (t[0] if t.shape[0] == 1 else t)


def smoothing_kernel_1d(size: int = 9, sigma: float | None = None) -> torch.Tensor:
    """1D Gaussian smoothing kernel (``sigma`` defaults to ``size / 6``), normalised to sum 1."""
    sigma = sigma or size / 6
    r = torch.arange(size, dtype=torch.float32) - (size - 1) / 2
    g = torch.exp(-(r**2) / (2 * sigma**2))
    return g / g.sum()


DERIVATIVE_1D = torch.tensor([1.0, 0.0, -1.0]) / 2  # central difference; convolved gives x[i+1] - x[i-1]
