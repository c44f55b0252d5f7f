"""``neuralsight filters`` (convolution and pooling as signal processing) and ``neuralsight params``."""

from __future__ import annotations

from pathlib import Path

import typer

from neuralsight.errors import DataError, UserError


def register(app: typer.Typer) -> None:
    app.command("filters")(filters)
    app.command("params")(params)


# ---- filters ------------------------------------------------------------------------------------------

def _load_gray(image: Path | None, dataset: str | None, index: int, data_dir: Path | None):
    """A float (H, W) image in [0, 1] and a label for titles."""
    import numpy as np
    import torch

    if image is not None and dataset is not None:
        raise UserError("give an IMAGE or --dataset, not both")
    if image is not None:
        from neuralsight.data.imagefolder import open_image

        arr = np.asarray(open_image(image).convert("L"), dtype=np.float32) / 255
        return torch.from_numpy(arr), Path(image).name
    if dataset is not None:
        if dataset != "fashion-mnist":
            raise UserError(f"--dataset {dataset} is not an image dataset for filters", "use --dataset fashion-mnist")
        from neuralsight.data.catalog import locate
        from neuralsight.data.idx import FASHION_CLASSES, load_mnist_split

        x, y = load_mnist_split(locate("fashion-mnist", data_dir), "test")
        if not 0 <= index < len(x):
            raise UserError(f"--index {index} is outside the Fashion-MNIST test set (0..{len(x) - 1})")
        return torch.from_numpy(x[index].astype(np.float32) / 255), f"fashion-mnist test #{index} ({FASHION_CLASSES[y[index]]})"
    raise UserError("nothing to filter", "give an IMAGE file, --dataset fashion-mnist --index N, or --signal FILE.csv")


def _shape(t) -> str:
    return "x".join(str(s) for s in t.shape)


def _kernel_list(specs: list[str]) -> list[tuple[str, object]]:
    from neuralsight.layers.conv import DEFAULT_KERNELS, parse_kernel

    items: list[str] = []
    for spec in specs or list(DEFAULT_KERNELS):
        # "sobel_x,laplacian" lists names; a matrix string ("1,0,-1;...") is one kernel.
        if any(c.isdigit() for c in spec.replace("gaussian:", "").replace("box:", "")) and ":" not in spec:
            items.append(spec)
        else:
            items.extend(s.strip() for s in spec.split(",") if s.strip())
    return [parse_kernel(s) for s in items]


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


def read_signal(spec: str):
    """A 1D float tensor from ``FILE.csv[:column]`` (name or 0-based index) or ``synthetic``."""
    import csv
    import math

    import torch

    if spec == "synthetic":
        g = torch.Generator().manual_seed(0)
        t = torch.linspace(0, 1, 400)
        clean = torch.sin(2 * math.pi * 3 * t) + (t > 0.5).float() * 1.5  # a sine with a step edge
        return clean + 0.3 * torch.randn(400, generator=g), "synthetic: sine + step at t=0.5 + noise (sigma 0.3)"
    path_text, column = spec, None
    if ":" in spec and not Path(spec).is_file():
        path_text, column = spec.rsplit(":", 1)
    path = Path(path_text)
    if not path.is_file():
        raise DataError(f"signal file {path} does not exist", "give FILE.csv[:column] or --signal synthetic")
    try:
        rows = list(csv.reader(path.read_text(encoding="utf-8", errors="replace").splitlines()))
    except csv.Error as err:
        raise DataError(f"{path} is not a CSV file: {err}") from None
    rows = [r for r in rows if r]
    if not rows:
        raise DataError(f"{path} is empty")

    def is_num(v: str) -> bool:
        try:
            float(v)
            return True
        except ValueError:
            return False

    header = None if all(is_num(v) for v in rows[0] if v.strip()) else rows[0]
    body = rows[1:] if header else rows
    if column is None:
        col = next((i for i in range(len(body[0])) if body and all(is_num(r[i]) for r in body[:20] if i < len(r))), None)
        if col is None:
            raise DataError(f"{path} has no numeric column", "name one: FILE.csv:column")
    elif column.isdigit():
        col = int(column)
    elif header and column in header:
        col = header.index(column)
    else:
        raise DataError(f"{path} has no column '{column}'", f"columns: {', '.join(header or [])}")
    values = []
    for r in body:
        if col < len(r) and is_num(r[col]):
            values.append(float(r[col]))
    if len(values) < 3:
        raise DataError(f"{path} column {column or col} has fewer than 3 numbers")
    name = header[col] if header and col < len(header) else f"column {col}"
    return torch.tensor(values), f"{path.name}: {name}"


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


def filters(
    image: Path | None = typer.Argument(None, help="Any image file (converted to grey)."),
    dataset: str | None = typer.Option(None, "--dataset", help="fashion-mnist: take a test image."),
    index: int = typer.Option(0, "--index", help="Test-set index with --dataset."),
    data: Path | None = typer.Option(None, "--data", help="Folder holding the dataset."),
    kernel: list[str] = typer.Option([], "--kernel", "-k",
                                     help="Kernel names (sobel_x,sobel_y,prewitt_x,prewitt_y,laplacian,gaussian[:SIGMA],"
                                          "box[:SIZE],sharpen,emboss) or a matrix '1,0,-1;2,0,-2;1,0,-1'. Repeatable."),
    mode: str = typer.Option("valid", "--mode", help="valid (shrinks), same (zero padding) or full."),
    stride: int = typer.Option(1, "--stride", min=1, help="Keep every stride-th output."),
    correlate: bool = typer.Option(False, "--correlate", help="Cross-correlation (what torch computes) instead of "
                                                              "true convolution."),
    pool: str | None = typer.Option(None, "--pool", help="Also pool: e.g. avg,max,min."),
    pool_size: int = typer.Option(2, "--pool-size", min=1),
    signal: str | None = typer.Option(None, "--signal", help="1D: FILE.csv[:column] or 'synthetic'."),
    out: Path = typer.Option(Path("."), "--out", help="Folder for the PNGs."),
):
    """Convolution and pooling as signal processing: each classic kernel's output, shapes annotated."""
    from neuralsight.cli import guard

    with guard():
        from neuralsight.layers.conv import MODES

        if mode not in MODES:
            raise UserError(f"--mode {mode} is not a convolution mode", f"choose from {', '.join(MODES)}")
        written = []
        if signal is not None:
            sig, title = read_signal(signal)
            written.append(filter_signal(sig, title, Path(out) / "filters_signal.png",
                                         mode="same" if mode == "full" else mode))
        if image is not None or dataset is not None or signal is None:
            img, title = _load_gray(image, dataset, index, data)
            from neuralsight.viz.classify import image_panels

            panels = filter_image(img, _kernel_list(list(kernel)), mode, stride, flip=not correlate)
            written.append(image_panels(panels, Path(out) / "filters.png", cols=4, title=title))
            if pool:
                modes = [m.strip() for m in pool.split(",") if m.strip()]
                written.append(image_panels(pool_image(img, modes, pool_size), Path(out) / "filters_pool.png",
                                            cols=len(modes) + 1, title=f"{title}: pooling"))
        for p in written:
            typer.echo(str(p))


# ---- params -------------------------------------------------------------------------------------------

def fc_vs_conv(size: int = 128, hidden: int = 100, kernel_size: int = 3, channels: int = 1) -> list[dict]:
    """The lecture's comparison: weights (no bias) of a dense layer vs a conv layer on a size x size input."""
    inputs = size * size * channels
    dense = inputs * hidden
    conv_one = kernel_size * kernel_size * channels
    conv_all = conv_one * hidden
    out = size - kernel_size + 1
    return [
        {"layer": f"dense: {size}x{size}x{channels} input -> {hidden} neurons", "weights": dense,
         "note": f"{inputs:,} inputs x {hidden} neurons"},
        {"layer": f"conv {kernel_size}x{kernel_size}, 1 filter", "weights": conv_one,
         "note": f"shared over all positions; output {out}x{out} (valid)"},
        {"layer": f"conv {kernel_size}x{kernel_size}, {hidden} filters", "weights": conv_all,
         "note": f"{dense / conv_all:,.0f}x fewer weights than the dense layer"},
    ]


def params(
    target: str | None = typer.Argument(None, help="A run directory or a CNN preset (lecture, fast, best)."),
    size: int = typer.Option(128, "--size", min=1, help="Input side (pixels) for the FC-vs-conv comparison."),
    hidden: int = typer.Option(100, "--hidden", min=1, help="Dense neurons (and conv filters) in the comparison."),
    kernel_size: int = typer.Option(3, "--kernel-size", min=1),
    channels: int = typer.Option(1, "--channels", min=1),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
):
    """Why convolution: dense-vs-conv weight counts, or a per-layer summary of a run or preset."""
    from neuralsight.cli import guard

    with guard():
        import json

        from rich.console import Console
        from rich.table import Table

        console = Console()
        if target is None:
            rows = fc_vs_conv(size, hidden, kernel_size, channels)
            if as_json:
                typer.echo(json.dumps(rows, indent=2))
                return
            t = Table("layer", "weights (no bias)", "note", title="fully connected vs convolution")
            for r in rows:
                t.add_row(r["layer"], f"{r['weights']:,}", r["note"])
            console.print(t)
            return
        model, input_shape, name = _model_for(target)
        from neuralsight.models.cnn import layer_summary

        rows = layer_summary(model, input_shape)
        total_p = sum(r["params"] for r in rows)
        total_m = sum(r["macs"] for r in rows)
        if as_json:
            typer.echo(json.dumps({"model": name, "input": list(input_shape), "layers": rows,
                                   "total_params": total_p, "total_macs": total_m}, indent=2))
            return
        t = Table("layer", "type", "output shape", "params", "MACs",
                  title=f"{name}: input {'x'.join(map(str, input_shape))}")
        for r in rows:
            t.add_row(r["layer"], r["type"], r["output"], f"{r['params']:,}", f"{r['macs']:,}")
        t.add_row("total", "", "", f"{total_p:,}", f"{total_m:,}", style="bold")
        console.print(t)


def _model_for(target: str):
    from neuralsight.models.cnn import PRESETS, cnn

    path = Path(target)
    if path.is_dir():
        from neuralsight.tasks.classify import load_run

        model, meta, _ = load_run(path)
        return model, (model.in_channels, *model.image_size), f"run {path.name}"
    if target in PRESETS:
        model = cnn(target, in_channels=1, num_classes=10, image_size=[28, 28])
        return model, (1, 28, 28), f"CNN preset '{target}' (Fashion-MNIST input)"
    raise UserError(f"'{target}' is neither a run directory nor a CNN preset",
                    f"presets: {', '.join(PRESETS)}; runs: see `neuralsight runs`")
