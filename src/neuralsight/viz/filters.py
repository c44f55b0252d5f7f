"""Convolution and pooling as signal processing: the panels and figures of ``neuralsight filters``."""

from __future__ import annotations

from pathlib import Path

from neuralsight.errors import UserError


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


def filter_image(img, kernels: list[tuple[str, object]], mode: str = "valid", stride: int = 1,
                 flip: bool = True) -> list[tuple[str, object]]:
    """Panels for the figure: the input, each kernel's output and the Sobel gradient magnitude, each titled
    with its shape change, e.g. ``"sobel_x: 28x28 -> 26x26 (valid 3x3)"``."""
    import torch

    from neuralsight.layers.conv import convolve, kernel

    panels = [(f"input {_shape(img)}", img)]
    op = "conv" if flip else "corr"
    for name, k in kernels:
        if k.ndim != 2:
            raise UserError(f"kernel {name} is 1D; images need a 2D kernel", "write rows separated by ';'")
        if any(s > n for s, n in zip(k.shape, img.shape, strict=True)) and mode == "valid":
            raise UserError(f"kernel {name} ({_shape(k)}) is larger than the image ({_shape(img)})")
        out = convolve(img, k, mode, stride, flip)
        st = f", stride {stride}" if stride > 1 else ""
        panels.append((f"{name}: {_shape(img)} -> {_shape(out)} ({mode} {_shape(k)} {op}{st})", out))
    gx = convolve(img, kernel("sobel_x"), mode, stride, flip)
    gy = convolve(img, kernel("sobel_y"), mode, stride, flip)
    mag = torch.sqrt(gx**2 + gy**2)
    panels.append((f"gradient magnitude |∇|: {_shape(img)} -> {_shape(mag)}", mag))
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
