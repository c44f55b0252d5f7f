"""``neuralsight export RUN --format onnx|torchscript``: a saved run's model as a file that runs without us.

The command opens the run on the CPU, calls :func:`neuralsight.export.export_run` (which writes the file, runs it
on real inputs from the run's data and compares it with PyTorch), and prints the check. Exit code 2 when the
exported model differs from PyTorch by more than the tolerance (nothing is written then).
"""

from __future__ import annotations

from pathlib import Path

import typer

from neuralsight.cli.core import app, echo, err, guard

RUN_HELP = "Run directory, or latest / latest:TASK (the newest run under runs/)."


@app.command(rich_help_panel="Use a saved run")
def export(run: str = typer.Argument(..., help=RUN_HELP),
           fmt: str = typer.Option(..., "--format", help="onnx (needs the export extra) or torchscript."),
           out: Path | None = typer.Option(None, "--out", help="Model file (default: RUN/export/<task>.onnx or "
                                                                ".pt); its metadata go to <file>.json beside it."),
           model: str | None = typer.Option(None, "--model", help="One model of a forecast run (default: all, "
                                                                   "an output each)."),
           data: Path | None = typer.Option(None, "--data", help="Folder holding the run's data (for the check)."),
           as_json: bool = typer.Option(False, "--json", help="Print JSON.")):
    """Export a saved run's model to ONNX or TorchScript and check it against PyTorch on the run's own data."""
    with guard():
        import json

        from neuralsight.engine import progress
        from neuralsight.export import export_run
        from neuralsight.tasks.base import SavedRun

        saved = SavedRun.open(run, device="cpu", data_dir=data)
        with progress.status(f"exporting {saved.path} to {fmt} and checking it"):
            result = export_run(saved, fmt.lower(), out, model)
        check = result.check
        if as_json:
            echo(json.dumps(result.to_dict(), indent=2, default=str))
        elif result.passed:
            echo(f"exported {result.path}")
            echo(f"metadata {result.metadata_path}")
        line = (f"{check.runtime} against PyTorch on {check.inputs}: largest absolute difference "
                f"{check.max_abs_diff:.3g} (fp32 tolerance {check.tolerance['text']})")
        if not result.passed:
            err(f"the exported model does not match PyTorch: {check.failure}; {line}; nothing was written")
            raise typer.Exit(2)
        if not as_json:
            echo(f"checked with {line}")

