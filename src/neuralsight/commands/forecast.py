"""`neuralsight position`: the position-sensitivity experiment (feed-forward vs LSTM vs 1D CNN)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def register(app: typer.Typer) -> None:
    @app.command()
    def position(
        out: Path = typer.Option(Path("runs/position"), "--out", help="Folder for position.png and position.json."),
        length: int = typer.Option(24, "--length", help="Sequence length."),
        train_positions: int = typer.Option(8, "--train-positions",
                                            help="The pattern starts only at 0..N-1 during training."),
        steps: int = typer.Option(200, "--steps", help="Full-batch Adam steps per model."),
        train_size: int = typer.Option(384, "--train-size", help="Training sequences."),
        seed: int = typer.Option(0, "--seed"),
        device: Optional[str] = typer.Option(None, "--device", help="auto, cpu, cuda or mps."),
    ):
        """Train a feed-forward net, an LSTM and a 1D CNN to detect a pattern seen only at some positions;
        plot accuracy by position (the lecture's position-sensitivity argument, measured)."""
        from neuralsight.cli import guard

        with guard():
            from neuralsight.engine.device import resolve_device
            from neuralsight.errors import UserError
            from neuralsight.io import atomic_write_json
            from neuralsight.tasks.position import PATTERN, PositionSpec, plot, run_experiment

            n_pos = length - len(PATTERN) + 1
            if not 0 < train_positions < n_pos:
                raise UserError(f"--train-positions {train_positions} must be between 1 and {n_pos - 1} "
                                f"for --length {length}")
            spec = PositionSpec(length=length, train_positions=train_positions, steps=steps,
                                train_size=train_size, seed=seed)
            result = run_experiment(spec, device=resolve_device(device or "auto"))
            out.mkdir(parents=True, exist_ok=True)
            atomic_write_json(out / "position.json", result)
            png = plot(result, out / "position.png")
            for kind in result["accuracy"]:
                typer.echo(f"{kind:5s} accuracy: trained positions {result['seen'][kind]:.3f}, "
                           f"unseen positions {result['unseen'][kind]:.3f}")
            typer.echo(f"figure: {png}")
