"""The lecture's commands: ``lecture`` (every idea's figure), ``filters`` (convolution and pooling), ``params``
(why convolution), ``position``."""

from __future__ import annotations

from pathlib import Path

import typer

from neuralsight.cli.core import app, echo, guard, print_table


@app.command(rich_help_panel="The lecture")
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
    with guard():
        from neuralsight.data.signals import load_gray, read_signal
        from neuralsight.errors import UserError
        from neuralsight.layers.conv import MODES
        from neuralsight.viz import filters as vf

        if mode not in MODES:
            raise UserError(f"--mode {mode} is not a convolution mode", f"choose from {', '.join(MODES)}")
        written = []
        if signal is not None:
            sig, title = read_signal(signal)
            written.append(vf.filter_signal(sig, title, Path(out) / "filters_signal.png",
                                            mode="same" if mode == "full" else mode))
        if image is not None or dataset is not None or signal is None:
            img, title = load_gray(image, dataset, index, data)
            written.append(vf.filter_figure(img, vf.kernel_list(list(kernel)), Path(out) / "filters.png", mode,
                                            stride, flip=not correlate, title=title))
            if pool:
                modes = [m.strip() for m in pool.split(",") if m.strip()]
                written.append(vf.pool_figure(img, modes, Path(out) / "filters_pool.png", pool_size,
                                              title=f"{title}: pooling"))
        for p in written:
            echo(str(p))


@app.command(rich_help_panel="The lecture")
def params(
    target: str | None = typer.Argument(None, help="A classify run (path or latest) or a CNN preset (lecture, "
                                                   "fast, best)."),
    size: int = typer.Option(128, "--size", min=1, help="Input side (pixels) for the FC-vs-conv comparison."),
    hidden: int = typer.Option(100, "--hidden", min=1, help="Dense neurons (and conv filters) in the comparison."),
    kernel_size: int = typer.Option(3, "--kernel-size", min=1),
    channels: int = typer.Option(1, "--channels", min=1),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
):
    """Why convolution: dense-vs-conv weight counts, or a per-layer summary of a run or preset."""
    with guard():
        import json

        from neuralsight.lecture.params import fc_vs_conv, model_for

        if target is None:
            rows = fc_vs_conv(size, hidden, kernel_size, channels)
            if as_json:
                echo(json.dumps(rows, indent=2))
                return
            echo("fully connected vs convolution")
            print_table(["layer", "weights (no bias)", "note"], [[r["layer"], f"{r['weights']:,}", r["note"]]
                                                                  for r in rows])
            return
        model, input_shape, name = model_for(target)
        from neuralsight.models.cnn import layer_summary

        rows = layer_summary(model, input_shape)
        total_p = sum(r["params"] for r in rows)
        total_m = sum(r["macs"] for r in rows)
        if as_json:
            echo(json.dumps({"model": name, "input": list(input_shape), "layers": rows,
                             "total_params": total_p, "total_macs": total_m}, indent=2))
            return
        echo(f"{name}: input {'x'.join(map(str, input_shape))}")
        print_table(["layer", "type", "output shape", "params", "MACs"],
                    [[r["layer"], r["type"], r["output"], f"{r['params']:,}", f"{r['macs']:,}"] for r in rows]
                    + [["total", "", "", f"{total_p:,}", f"{total_m:,}"]])


@app.command(rich_help_panel="The lecture")
def position(
    out: Path = typer.Option(Path("runs/position"), "--out", help="Folder for position.png and position.json."),
    length: int = typer.Option(24, "--length", help="Sequence length."),
    train_positions: int = typer.Option(8, "--train-positions", help="The pattern starts only at 0..N-1 in training."),
    steps: int = typer.Option(200, "--steps", help="Full-batch Adam steps per model."),
    train_size: int = typer.Option(384, "--train-size", help="Training sequences."),
    seed: int = typer.Option(0, "--seed"),
    device: str | None = typer.Option(None, "--device", help="auto, cpu, cuda or mps."),
):
    """Train a feed-forward net, an LSTM and a 1D CNN to detect a pattern seen only at some positions;
    plot accuracy by position (the lecture's position-sensitivity argument, measured)."""
    with guard():
        from neuralsight.engine import progress
        from neuralsight.engine.device import resolve_device
        from neuralsight.errors import UserError
        from neuralsight.io import atomic_write_json
        from neuralsight.lecture.position import PATTERN, PositionSpec, run_experiment
        from neuralsight.viz.position import plot

        n_pos = length - len(PATTERN) + 1
        if not 0 < train_positions < n_pos:
            raise UserError(f"--train-positions {train_positions} must be between 1 and {n_pos - 1} "
                            f"for --length {length}")
        spec = PositionSpec(length=length, train_positions=train_positions, steps=steps,
                            train_size=train_size, seed=seed)
        with progress.status("training the feed-forward net, the LSTM and the 1D CNN"):
            result = run_experiment(spec, device=resolve_device(device or "auto"))
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_json(out / "position.json", result)
        png = plot(result, out / "position.png")
        print_table(["model", "accuracy at trained positions", "accuracy at unseen positions"],
                    [[k, result["seen"][k], result["unseen"][k]] for k in result["accuracy"]])
        echo(f"figure: {png}")


@app.command(name="lecture", rich_help_panel="The lecture")
def lecture_command(
    ideas: list[str] = typer.Argument(None, help="Ideas to draw (default: every one that needs no trained run); "
                                                 "see --list."),
    out: Path = typer.Option(Path("runs/lecture"), "--out", help="Folder for the PNGs."),
    run: str | None = typer.Option(None, "--run", help="A classify run (path or latest) for flatten-softmax."),
    data: Path | None = typer.Option(None, "--data", help="Folder holding the datasets (default: the catalog)."),
    list_only: bool = typer.Option(False, "--list", help="List the ideas, their commands and figures; draw nothing."),
    markdown: bool = typer.Option(False, "--markdown", help="With --list: a Markdown table (the README's)."),
):
    """Draw the lecture's ideas: convolution, channels, pooling, dense vs conv, softmax, transposed convolution,
    U-Net, V-Net, RNN unfolding, LSTM gates; and say which command makes the ones that need a trained run."""
    with guard():
        from neuralsight.lecture.ideas import IDEAS, draw, get_idea, markdown_table

        if list_only:
            if markdown:
                echo(markdown_table())
            else:
                print_table(["idea", "command", "figure"], [[i.key, i.command, i.figure] for i in IDEAS])
            return
        keys = list(ideas or [])
        for key in keys:
            get_idea(key)                          # every name checked before anything is drawn
        rows = []
        for key, figures in draw(keys or None, out, data, run).items():
            idea = get_idea(key)
            if figures:
                rows += [[key, str(png)] for png, _ in figures]
            else:
                rows.append([key, f"from a trained run: `{idea.command}` writes {idea.figure}"])
        print_table(["idea", "figure"], rows)
