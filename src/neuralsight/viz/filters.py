"""Convolution and pooling as signal processing: the panels and figures of ``neuralsight filters``.

Every image figure here draws its panels on **one value scale with a colour bar** and at **one pixel scale**
(each panel's size on the page is proportional to its pixel count), so what the titles announce can be seen:
a valid 3x3 kernel's 26x26 output is drawn smaller than the 28x28 input, and min pooling is darker than max
pooling. Two scales exist and each figure states which panel uses which:

- ``intensity``: a grey scale spanning the input's value range (outputs beyond it are clipped, shown by
  the colour bar's arrows); the input, smoothing kernels (kernel sum 1) and pooling use it.
- ``signed``: a diverging map, blue negative / white zero / red positive, symmetric about 0 and shared by
  every edge response (kernels summing to 0: Sobel, Prewitt, Laplacian) and the gradient magnitude.
"""

from __future__ import annotations

from pathlib import Path

from neuralsight.errors import UserError

INTENSITY = "intensity"
SIGNED = "signed"
SCALES = {INTENSITY: ("gray", "grey scale: the input's value range"),
          SIGNED: ("RdBu_r", "signed edge response: blue < 0 < red")}


def _shape(t) -> str:
    return "x".join(str(s) for s in t.shape)


def kernel_list(specs: list[str]) -> list[tuple[str, object]]:
    from neuralsight.layers.conv import DEFAULT_KERNELS, parse_kernel

    items: list[str] = []
    for spec in specs or list(DEFAULT_KERNELS):
        # "sobel_x,laplacian" lists names; a matrix string ("1,0,-1;...") is one kernel.
        if any(c.isdigit() for c in spec.replace("gaussian:", "").replace("box:", "")) and ":" not in spec:
            items.append(spec)
        else:
            items.extend(s.strip() for s in spec.split(",") if s.strip())
    try:
        return [parse_kernel(s) for s in items]
    except ValueError as err:
        raise UserError(f"--kernel: {err}") from None


def kernel_scale(kernel) -> str:
    """``signed`` for a kernel whose weights sum to 0 (it responds to change: an edge detector), else
    ``intensity`` (it keeps the mean brightness: smoothing, sharpening)."""
    return SIGNED if abs(float(kernel.sum())) < 1e-6 * max(1.0, float(kernel.abs().sum())) else INTENSITY


def filter_image(img, kernels: list[tuple[str, object]], mode: str = "valid", stride: int = 1,
                 flip: bool = True) -> list[tuple[str, object]]:
    """Panels for the figure: the input, each kernel's output and the Sobel gradient magnitude, each titled
    with its shape change, e.g. ``"sobel_x: 28x28 -> 26x26 (valid 3x3 conv)"``."""
    return [(title, values) for title, values, _ in filter_panels(img, kernels, mode, stride, flip)]


def filter_panels(img, kernels: list[tuple[str, object]], mode: str = "valid", stride: int = 1,
                  flip: bool = True) -> list[tuple[str, object, str]]:
    """:func:`filter_image`'s panels as ``(title, values (H, W), scale)``, the scale from :func:`kernel_scale`."""
    import torch

    from neuralsight.layers.conv import convolve, kernel

    panels = [(f"input {_shape(img)}", img, INTENSITY)]
    op = "conv" if flip else "corr"
    for name, k in kernels:
        if k.ndim != 2:
            raise UserError(f"kernel {name} is 1D; images need a 2D kernel", "write rows separated by ';'")
        if any(s > n for s, n in zip(k.shape, img.shape, strict=True)) and mode == "valid":
            raise UserError(f"kernel {name} ({_shape(k)}) is larger than the image ({_shape(img)})")
        out = convolve(img, k, mode, stride, flip)
        st = f", stride {stride}" if stride > 1 else ""
        panels.append((f"{name}: {_shape(img)} -> {_shape(out)} ({mode} {_shape(k)} {op}{st})", out,
                       kernel_scale(k)))
    gx = convolve(img, kernel("sobel_x"), mode, stride, flip)
    gy = convolve(img, kernel("sobel_y"), mode, stride, flip)
    mag = torch.sqrt(gx**2 + gy**2)
    panels.append((f"gradient magnitude |∇|: {_shape(img)} -> {_shape(mag)}", mag, SIGNED))
    return panels


def pool_image(img, modes: list[str], size: int = 2, stride: int | None = None) -> list[tuple[str, object]]:
    from neuralsight.layers.pool import POOL_MODES, Pool

    panels = [(f"input {_shape(img)}", img)]
    for mode in modes:
        if mode not in POOL_MODES:
            raise UserError(f"--pool {mode} is not a pooling mode", f"choose from {', '.join(POOL_MODES)}")
        out = Pool(mode, size, stride)(img[None, None])[0, 0]
        panels.append((f"{mode} pool {size}x{size}: {_shape(img)} -> {_shape(out)}", out))
    return panels


def value_ranges(panels: list[tuple[str, object, str]], reference=None) -> dict[str, tuple[float, float]]:
    """One ``(vmin, vmax)`` per scale used: ``intensity`` spans ``reference`` (default: the first panel, the
    input), ``signed`` is symmetric about 0 over every signed panel. A flat range is widened to show one grey."""
    import numpy as np

    ranges = {}
    for scale in dict.fromkeys(s for _, _, s in panels):
        if scale == INTENSITY:
            ref = np.asarray(panels[0][1] if reference is None else reference, dtype=np.float64)
            lo, hi = float(ref.min()), float(ref.max())
        elif scale == SIGNED:
            top = max(float(np.abs(np.asarray(v, dtype=np.float64)).max()) for _, v, s in panels if s == SIGNED)
            lo, hi = -top, top
        else:
            raise ValueError(f"scale must be one of {tuple(SCALES)}, got {scale!r}")
        if hi - lo < 1e-12:                      # a constant image: keep it mid-scale, not black or white
            lo, hi = lo - 0.5, hi + 0.5
        ranges[scale] = (lo, hi)
    return ranges


def panels_figure(panels: list[tuple[str, object, str]], path: Path, title: str = "", cols: int = 4,
                  panel_inches: float = 2.2, reference=None) -> Path:
    """Draw ``(title, values (H, W), scale)`` panels on shared value scales, with colour bars, at one pixel scale.

    The largest panel side is ``panel_inches`` long; every other panel keeps the same inches per pixel, so a
    26x26 output is drawn 26/28 the size of a 28x28 input. Panels are centred in equal grid cells.
    """
    import math

    import numpy as np

    from neuralsight.viz.figures import plt, save

    n = len(panels)
    cols = max(1, min(cols, n))
    rows = math.ceil(n / cols)
    arrays = [np.asarray(v, dtype=np.float32) for _, v, _ in panels]
    if any(a.ndim != 2 for a in arrays):
        raise ValueError(f"panels must be 2D arrays, got shapes {[a.shape for a in arrays]}")
    scale = panel_inches / max(max(a.shape) for a in arrays)          # inches per pixel, for every panel
    # Each grid column is as wide as its widest panel and each row as tall as its tallest, so small panels
    # (pooled, strided) pack closely while keeping the common pixel scale.
    col_w = [max(a.shape[1] for a in arrays[c::cols]) * scale for c in range(cols)]
    row_h = [max(a.shape[0] for a in arrays[r * cols:(r + 1) * cols]) * scale for r in range(rows)]
    col_w = [max(w, 1.6) for w in col_w]                             # room for a two-line title
    gap_x, title_h, top, bar_w = 0.3, 0.45, 0.45 if title else 0.1, 1.0
    ranges = value_ranges(panels, reference)
    width = sum(col_w) + gap_x * cols + bar_w * len(ranges) + 0.2
    height = top + sum(row_h) + title_h * rows + 0.1
    p = plt()
    fig = p.figure(figsize=(width, height))
    images = {}
    for k, ((name, _, kind), arr) in enumerate(zip(panels, arrays, strict=True)):
        r, c = divmod(k, cols)
        w, h = arr.shape[1] * scale, arr.shape[0] * scale
        left = sum(col_w[:c]) + gap_x * c + gap_x / 2 + (col_w[c] - w) / 2
        bottom = height - top - sum(row_h[:r]) - title_h * (r + 1) - (row_h[r] + h) / 2
        ax = fig.add_axes([left / width, bottom / height, w / width, h / height])
        cmap, _ = SCALES[kind]
        lo, hi = ranges[kind]
        images[kind] = ax.imshow(arr, cmap=cmap, vmin=lo, vmax=hi, interpolation="nearest", aspect="auto")
        ax.set_xticks([])
        ax.set_yticks([])
        for spine in ax.spines.values():
            spine.set_color("#999")
            spine.set_linewidth(0.6)
        ax.set_title(name.replace(": ", ":\n", 1), fontsize=7)
    bar_h = min(row_h[0], 2.2)
    for i, (kind, im) in enumerate(images.items()):
        lo, hi = ranges[kind]
        left = sum(col_w) + gap_x * cols + i * bar_w + 0.1
        cax = fig.add_axes([left / width, (height - top - title_h - bar_h) / height, 0.14 / width, bar_h / height])
        ref = np.concatenate([a.ravel() for a, (_, _, s) in zip(arrays, panels, strict=True) if s == kind])
        extend = {(True, True): "both", (True, False): "min", (False, True): "max"}.get(
            (bool(ref.min() < lo - 1e-6), bool(ref.max() > hi + 1e-6)), "neither")
        bar = fig.colorbar(im, cax=cax, extend=extend)
        bar.ax.tick_params(labelsize=6)
        bar.set_label(SCALES[kind][1], fontsize=6)
    if title:
        fig.suptitle(title, fontsize=9, y=1 - 0.12 / height, va="top")
    return save(fig, path)


def filter_figure(img, kernels: list[tuple[str, object]], path: Path, mode: str = "valid", stride: int = 1,
                  flip: bool = True, title: str = "") -> Path:
    """``filters.png``: the input and each kernel's output (:func:`filter_panels`) via :func:`panels_figure`."""
    return panels_figure(filter_panels(img, kernels, mode, stride, flip), path, title=title, cols=4)


def pool_figure(img, modes: list[str], path: Path, size: int = 2, stride: int | None = None,
                title: str = "") -> Path:
    """``filters_pool.png``: the input and each pooling, all on the input's grey scale, at one pixel scale."""
    panels = [(t, v, INTENSITY) for t, v in pool_image(img, modes, size, stride)]
    return panels_figure(panels, path, title=title, cols=len(panels))


def filter_signal(signal, title: str, out: Path, mode: str = "same", size: int = 9) -> Path:
    """Line plots: the signal, its Gaussian smoothing, and a derivative (edge) kernel's response."""
    from neuralsight.layers.conv import DERIVATIVE_1D, convolve, smoothing_kernel_1d
    from neuralsight.viz.figures import plt, save

    smooth_k = smoothing_kernel_1d(size)
    smooth = convolve(signal, smooth_k, mode)
    edge = convolve(smooth, DERIVATIVE_1D, mode)
    p = plt()
    fig, axes = p.subplots(3, 1, figsize=(9, 7), sharex=False)
    n = len(signal)
    axes[0].plot(signal.numpy(), lw=0.8, color="tab:gray")
    axes[0].set_title(f"{title}  (length {n})", fontsize=9)
    axes[1].plot(signal.numpy(), lw=0.5, color="tab:gray", alpha=0.5, label="input")
    off = 0 if mode != "valid" else (size - 1) // 2
    axes[1].plot(range(off, off + len(smooth)), smooth.numpy(), color="tab:blue", label="smoothed")
    axes[1].set_title(f"Gaussian smoothing, kernel {size}: {n} -> {len(smooth)} ({mode})", fontsize=9)
    axes[1].legend(fontsize=8)
    off2 = off + (0 if mode != "valid" else 1)
    axes[2].plot(range(off2, off2 + len(edge)), edge.numpy(), color="tab:red")
    axes[2].set_title(f"derivative (edge) kernel [1, 0, -1]/2 on the smoothed signal: {len(smooth)} -> {len(edge)} "
                      f"({mode})", fontsize=9)
    for ax in axes:
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return save(fig, out)
