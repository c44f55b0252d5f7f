"""The `neuralsight` command line. Every command is thin: parse, then call runner/, tasks/ or viz/.

Heavy modules (torch, matplotlib, nibabel, captum, gradio) are imported inside commands, so
``neuralsight --help`` answers at once. A :class:`UserError` prints one red line and exits with code 2;
``--verbose`` adds the traceback.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import os
import sys
from pathlib import Path

import typer

from neuralsight.errors import UserError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Neural-network signal and image processing you can run, measure and see.",
                  context_settings={"help_option_names": ["-h", "--help"]})
train_app = typer.Typer(no_args_is_help=True, help="Train a model; writes runs/<task>/<stamp>-<name>/.")
app.add_typer(train_app, name="train")

COMMAND_MODULES = ("data", "classify", "textgen", "segment", "segment3d", "forecast", "app")
STATE = {"verbose": False}


def _err(msg: str) -> None:
    from rich.console import Console

    Console(stderr=True, highlight=False, soft_wrap=True).print(f"[bold red]error:[/] {msg}", markup=True)


@contextlib.contextmanager
def guard():
    """Turn user errors into one red line and exit code 2; an interrupted run into 128 + signal."""
    from neuralsight.runner import Interrupted

    try:
        yield
    except UserError as err:
        if STATE["verbose"]:
            import traceback

            traceback.print_exc()
        from rich.markup import escape

        _err(escape(str(err)))
        raise typer.Exit(err.exit_code) from None
    except Interrupted as err:
        from rich.console import Console
        from rich.markup import escape

        Console(stderr=True, highlight=False, soft_wrap=True).print(
            f"[yellow]{escape(str(err))}. Resume with: neuralsight train {escape(err.task)} --resume {err.run_dir}")
        raise typer.Exit(err.exit_code) from None
    except KeyboardInterrupt:
        _err("interrupted")
        raise typer.Exit(130) from None


def _version(value: bool):
    if value:
        from neuralsight import __version__

        typer.echo(f"neuralsight {__version__}")
        raise typer.Exit()


@app.callback()
def _main(verbose: bool = typer.Option(False, "--verbose", "-v", help="Show tracebacks for errors."),
          version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                       help="Print the version and exit.")):
    STATE["verbose"] = verbose


def _make_train_command(task: str):
    def command(
        config: Path | None = typer.Option(None, "--config", help="TOML config file (over the preset)."),
        preset: str | None = typer.Option(None, "--preset", help="Preset name in configs/."),
        set_: list[str] = typer.Option([], "--set", help="Override a key: --set train.lr=0.002 (repeatable)."),
        quick: bool = typer.Option(False, "--quick", help="Tiny budget for smoke runs and the demo."),
        dataset: str | None = typer.Option(None, "--dataset", help="Catalog dataset or 'folder'."),
        data: Path | None = typer.Option(None, "--data", help="Folder holding the data (overrides lookup)."),
        epochs: int | None = typer.Option(None, "--epochs"),
        steps: int | None = typer.Option(None, "--steps", help="Optimizer steps (overrides epochs)."),
        max_time: float | None = typer.Option(
            None, "--max-time", help="Wall-clock budget in seconds; alone, the LR schedule spans it."),
        batch_size: int | None = typer.Option(None, "--batch-size"),
        lr: float | None = typer.Option(None, "--lr"),
        device: str | None = typer.Option(None, "--device", help="auto, cpu, cuda or mps."),
        precision: str | None = typer.Option(None, "--precision", help="auto, fp32, bf16 or fp16."),
        compile: bool | None = typer.Option(None, "--compile/--no-compile", help="torch.compile the model."),
        seed: int | None = typer.Option(None, "--seed"),
        deterministic: bool | None = typer.Option(None, "--deterministic/--nondeterministic"),
        resume: Path | None = typer.Option(None, "--resume", help="Continue a run directory."),
        name: str | None = typer.Option(None, "--name", help="Run name (default: the preset)."),
        out: Path | None = typer.Option(None, "--out", help="Runs root folder (default: runs/)."),
        progress: bool | None = typer.Option(None, "--progress/--no-progress"),
    ):
        from neuralsight.runner import TrainOptions, train

        with guard():
            opts = TrainOptions(preset=preset, config_file=config, overrides=list(set_), quick=quick,
                                resume=resume, name=name, out=out, dataset=dataset, data_dir=data,
                                epochs=epochs, steps=steps, max_time=max_time, batch_size=batch_size, lr=lr,
                                device=device, precision=precision, compile=compile, seed=seed,
                                deterministic=deterministic, progress=progress)
            run_dir = train(task, opts)
            if os.environ.get("RANK", "0") == "0":  # under torchrun, rank 0 speaks for all
                typer.echo(f"run: {run_dir}\nreport: {run_dir / 'report.html'}")

    return command


TRAIN_HELP = {
    "classify": "CNN image classification (Fashion-MNIST or an image folder per class).",
    "textgen": "Character-level RNN/LSTM/GRU text generation (Romeo and Juliet, any text).",
    "segment": "2D U-Net semantic segmentation (Oxford-IIIT Pet, medical image/mask folders).",
    "segment3d": "3D V-Net / U-Net segmentation of NIfTI volumes (MSD hippocampus).",
    "forecast": "RNN/LSTM/GRU time-series forecasting against baselines (COVID-19 cases in Hungary).",
}


def _register_train_commands() -> None:
    from neuralsight.tasks import available

    for task in available():
        train_app.command(task, help=TRAIN_HELP.get(task, ""))(_make_train_command(task))


def _run_dir(run: Path) -> Path:
    if not Path(run).is_dir():
        raise UserError(f"run directory {run} does not exist", "list saved runs with `neuralsight runs`")
    if not (Path(run) / "config.toml").is_file():
        raise UserError(f"{run} is not a neuralsight run directory (no config.toml)",
                        "pass a folder under runs/<task>/, see `neuralsight runs`")
    return Path(run)


def _task_of(run: Path):
    from neuralsight.engine.runs import read_run_task
    from neuralsight.tasks import get_task

    name = read_run_task(_run_dir(run))
    return name, get_task(name)


def _need(task_name: str, module, fn: str, command: str):
    if not hasattr(module, fn):
        raise UserError(f"`neuralsight {command}` does not apply to a '{task_name}' run")
    return getattr(module, fn)


@app.command("eval")
def eval_(run: Path = typer.Argument(..., help="Run directory."),
          split: str = typer.Option("test", "--split", help="Which split to evaluate (test or val)."),
          data: Path | None = typer.Option(None, "--data", help="Folder holding the data."),
          as_json: bool = typer.Option(False, "--json", help="Print JSON.")):
    """Evaluate a saved run's best checkpoint on its data."""
    with guard():
        name, task = _task_of(run)
        fn = _need(name, task, "evaluate", "eval")
        metrics = fn(run, {"split": split, "data_dir": data})
        _print_metrics(metrics, as_json)


def _print_metrics(metrics: dict, as_json: bool) -> None:
    import json

    if as_json:
        typer.echo(json.dumps(metrics, indent=2, default=float))
        return
    from rich.console import Console
    from rich.table import Table

    t = Table("metric", "value")
    for k, v in metrics.items():
        if isinstance(v, (int, float)):
            t.add_row(k, f"{v:.4f}" if isinstance(v, float) else str(v))
    Console().print(t)


@app.command()
def predict(run: Path = typer.Argument(..., help="Run directory."),
            inputs: list[Path] = typer.Argument(None, help="Images, volumes or CSV files."),
            out: Path | None = typer.Option(None, "--out", help="Output folder (default: RUN/predictions)."),
            as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
            horizon: int | None = typer.Option(None, "--horizon", help="Forecast horizon (forecast runs)."),
            tile: int | None = typer.Option(None, "--tile", help="Tile size for large inputs (segment)."),
            top_k: int = typer.Option(3, "--top-k", help="Classes to show (classify)."),
            set_: list[str] = typer.Option([], "--set", help="Task-specific option key=value (repeatable).")):
    """Apply a saved run to new inputs."""
    from neuralsight.config import parse_overrides

    with guard():
        name, task = _task_of(run)
        fn = _need(name, task, "predict", "predict")
        opts = {"out": out, "json": as_json, "horizon": horizon, "tile": tile, "top_k": top_k,
                **dict(parse_overrides(list(set_)))}
        code = fn(run, list(inputs or []), opts)
    if code:
        raise typer.Exit(int(code))


@app.command()
def generate(run: Path = typer.Argument(..., help="A textgen run directory."),
             seed: str = typer.Option("ROMEO:", "--seed", help="Text to continue."),
             length: int = typer.Option(500, "--length", help="Characters to generate."),
             temperature: float = typer.Option(0.8, "--temperature"),
             top_k: int = typer.Option(0, "--top-k", help="Sample from the k likeliest characters (0: all)."),
             rng_seed: int | None = typer.Option(None, "--rng-seed", help="Repeatable sampling.")):
    """Continue a seed text with a saved character model (streams to the terminal)."""
    with guard():
        name, task = _task_of(run)
        fn = _need(name, task, "generate_cli", "generate")
        fn(run, {"seed": seed, "length": length, "temperature": temperature, "top_k": top_k,
                 "rng_seed": rng_seed})


@app.command()
def explain(run: Path = typer.Argument(..., help="Run directory."),
            inputs: list[Path] = typer.Argument(None, help="Inputs to explain (images, volumes)."),
            text: str | None = typer.Option(None, "--text", help="Text passage (textgen runs)."),
            method: str = typer.Option("auto", "--method", help="saliency, gradcam, occlusion, features, gates."),
            index: int | None = typer.Option(None, "--index", help="Dataset item to explain."),
            out: Path | None = typer.Option(None, "--out", help="Output folder (default: RUN/explain).")):
    """Show what a saved model looks at: attributions, feature maps, LSTM gate traces."""
    with guard():
        name, task = _task_of(run)
        fn = _need(name, task, "explain", "explain")
        paths = fn(run, list(inputs or []), {"text": text, "method": method, "index": index, "out": out})
        for p in paths or []:
            typer.echo(str(p))


@app.command()
def report(run: Path = typer.Argument(..., help="Run directory.")):
    """Re-render a run's report.html."""
    with guard():
        _run_dir(run)
        from neuralsight.report.html import write_report

        typer.echo(str(write_report(run)))


@app.command()
def runs(root: Path = typer.Option(Path("runs"), "--root", help="Runs folder.")):
    """List saved runs with their headline metric."""
    with guard():
        from rich.console import Console
        from rich.table import Table

        from neuralsight.engine.runs import list_runs
        from neuralsight.report.html import read_summary

        table = Table("task", "headline", "value", "steps", "stopped by", "time (s)", "run")
        table.columns[-1].overflow = "fold"  # the path is what users copy: never cut it
        found = list_runs(root)
        for path in found:
            s = read_summary(path)
            head = s.get("headline") or {}
            value = head.get("value")
            fit = s.get("fit") or {}
            table.add_row(s.get("task", path.parent.name), str(head.get("name", "-")),
                          f"{value:.4f}" if isinstance(value, (int, float)) else "-",
                          str(fit.get("step", "-")), str(fit.get("stopped_by", "not finished")),
                          f"{fit.get('train_seconds', 0):.1f}", str(path))
        if not found:
            typer.echo(f"no runs under {root}")
        else:
            Console().print(table)


@app.command()
def demo(out: Path | None = typer.Option(None, "--out", help="Runs root (default: runs/)."),
         task: list[str] = typer.Option([], "--task", help="Only these tasks (repeatable)."),
         device: str | None = typer.Option(None, "--device", help="auto, cpu, cuda or mps.")):
    """Run every task with its quick preset and write one combined report.html."""
    with guard():
        from neuralsight.runner import demo as run_demo

        run_demo(out=out, tasks=list(task) or None, device=device)


def _register_command_modules() -> None:
    for mod in COMMAND_MODULES:
        if importlib.util.find_spec(f"neuralsight.commands.{mod}") is not None:
            importlib.import_module(f"neuralsight.commands.{mod}").register(app)


_register_train_commands()
_register_command_modules()


def _sigterm_as_interrupt(signum, frame):
    raise KeyboardInterrupt  # outside the training loop (which saves first), SIGTERM ends like Ctrl-C


def main() -> None:
    import signal

    signal.signal(signal.SIGTERM, _sigterm_as_interrupt)
    try:
        app()
    except UserError as err:  # raised outside a guarded command (e.g. while building the app)
        _err(str(err))
        sys.exit(2)
    except KeyboardInterrupt:
        _err("interrupted")
        sys.exit(130)


if __name__ == "__main__":
    main()
