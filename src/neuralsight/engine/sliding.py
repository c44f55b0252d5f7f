"""N-dimensional sliding-window (tiled) inference with overlap and Gaussian or uniform blending.

Large inputs (a 3000x3000 X-ray, a whole CT volume) do not fit a network in one pass. The input is cut
into windows of ``roi_size`` that overlap by ``overlap``; ``sw_batch_size`` windows at a time go through
the predictor on ``device``, and their outputs are added into a float32 accumulator on
``output_device`` weighted by an importance map (a Gaussian centred on the window, so window borders,
where zero padding distorts the network's view, count less). Peak memory is one batch of windows on the
device plus the accumulator, whatever the input size. The same idea as MONAI's
``inferers.sliding_window_inference``, written for this package.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence

import torch

BLEND_MODES = ("gaussian", "constant")


def window_starts(size: int, window: int, overlap: float) -> list[int]:
    """Start offsets along one axis so windows of ``window`` cover ``[0, size)`` with ``overlap``.

    The last window is aligned to the end, so no window runs past the input.
    """
    if window >= size:
        return [0]
    stride = max(1, int(round(window * (1 - overlap))))
    count = math.ceil((size - window) / stride) + 1
    starts = [min(i * stride, size - window) for i in range(count)]
    return sorted(set(starts))


def importance_map(roi_size: Sequence[int], mode: str = "gaussian", sigma_scale: float = 0.125,
                   device=None) -> torch.Tensor:
    """Blending weights of one window, shape ``roi_size``, max 1 and strictly positive."""
    if mode not in BLEND_MODES:
        raise ValueError(f"blend mode must be one of {BLEND_MODES}, got {mode!r}")
    if mode == "constant":
        return torch.ones(tuple(roi_size), device=device)
    weights = None
    for n in roi_size:
        centre = (n - 1) / 2
        sigma = max(sigma_scale * n, 1e-3)
        axis = torch.exp(-0.5 * ((torch.arange(n, device=device, dtype=torch.float32) - centre) / sigma) ** 2)
        weights = axis if weights is None else weights.unsqueeze(-1) * axis
    weights = weights / weights.max()
    # Pixels only one window reaches must still count; avoid division by ~0 at the input's corners.
    return weights.clamp_min(1e-3)


@torch.no_grad()
def sliding_window_inference(inputs: torch.Tensor, roi_size: Sequence[int] | int,
                             predictor: Callable[[torch.Tensor], torch.Tensor], overlap: float = 0.25,
                             sw_batch_size: int = 4, mode: str = "gaussian", sigma_scale: float = 0.125,
                             device: torch.device | str | None = None,
                             output_device: torch.device | str | None = None) -> torch.Tensor:
    """Run ``predictor`` over overlapping windows of ``inputs`` and blend the outputs.

    Args:
        inputs: ``(B, C_in, *S)`` with ``len(S)`` spatial dims; may stay on the CPU.
        roi_size: window size per spatial dim (an int means the same for all); clamped to the input size,
            so an input no larger than the window takes exactly one pass (identical to whole inference).
        predictor: maps ``(n, C_in, *roi)`` to ``(n, C_out, *roi)`` (e.g. a fully convolutional net).
        overlap: fraction of a window shared with its neighbour, in ``[0, 1)``.
        sw_batch_size: windows per predictor call (bounds device memory).
        mode: ``"gaussian"`` or ``"constant"`` blending.
        sigma_scale: Gaussian sigma as a fraction of the window size.
        device: where windows are computed (default: the input's device).
        output_device: where the output is accumulated (default: the input's device).

    Returns:
        ``(B, C_out, *S)`` float32 blended outputs on ``output_device``.
    """
    if not 0 <= overlap < 1:
        raise ValueError(f"overlap must be in [0, 1), got {overlap}")
    spatial = tuple(inputs.shape[2:])
    dims = len(spatial)
    if isinstance(roi_size, int):
        roi_size = (roi_size,) * dims
    if len(roi_size) != dims:
        raise ValueError(f"roi_size {tuple(roi_size)} must have {dims} entries for input {tuple(inputs.shape)}")
    roi = tuple(min(int(r), s) for r, s in zip(roi_size, spatial, strict=True))
    device = torch.device(device) if device is not None else inputs.device
    output_device = torch.device(output_device) if output_device is not None else inputs.device
    weight = importance_map(roi, mode, sigma_scale, device=output_device)        # (*roi)
    starts = list(itertools.product(*(window_starts(s, r, overlap) for s, r in zip(spatial, roi, strict=True))))
    batch = inputs.shape[0]
    jobs = [(b, st) for b in range(batch) for st in starts]

    out = None
    count = torch.zeros((batch, 1, *spatial), dtype=torch.float32, device=output_device)  # (B, 1, *S)
    for i in range(0, len(jobs), sw_batch_size):
        chunk = jobs[i:i + sw_batch_size]
        slices = [(b, tuple(slice(s, s + r) for s, r in zip(st, roi, strict=True))) for b, st in chunk]
        windows = torch.stack([inputs[(b, slice(None), *sl)] for b, sl in slices]).to(device)  # (n, C_in, *roi)
        pred = predictor(windows).float().to(output_device)                                  # (n, C_out, *roi)
        if out is None:
            out = torch.zeros((batch, pred.shape[1], *spatial), dtype=torch.float32, device=output_device)
        for (b, sl), p in zip(slices, pred, strict=True):
            out[(b, slice(None), *sl)] += p * weight
            count[(b, slice(None), *sl)] += weight
    return out / count
