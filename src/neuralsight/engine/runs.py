"""Run directories: ``runs/<task>/<YYYYmmdd-HHMMSS>-<name>/`` with config, metrics, checkpoints, figures.

The layout, in one place::

    config.toml      the resolved config, with ``task = "<name>"``       (read_config, read_run_task)
    metrics.jsonl    one JSON record per line: train, eval, ddp          (read_metrics)
    summary.json     headline, metrics, fit outcome, hardware            (read_summary)
    checkpoints/     last.* and best.* (engine/checkpoint.py)
    figures/ samples/ report.html
    models/<name>/   a sub-run per extra model of a multi-model task, with its own checkpoints/ and
                     metrics.jsonl                                        (Run.child)
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from neuralsight.errors import UserError

RUNS_ROOT = Path("runs")


@dataclass
class Run:
    """A run directory. Only rank 0 writes (``writer`` is False elsewhere)."""

    path: Path
    task: str
    writer: bool = True
    _metrics_fh: Any = field(default=None, repr=False)

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    @property
    def figures(self) -> Path:
        return self.path / "figures"

    @property
    def samples(self) -> Path:
        return self.path / "samples"

    @property
    def metrics_path(self) -> Path:
        return self.path / "metrics.jsonl"

    def log(self, record: dict) -> None:
        """Append one JSON object to metrics.jsonl (flushed at once so a crash loses nothing)."""
        if not self.writer:
            return
        if self._metrics_fh is None:
            self._metrics_fh = open(self.metrics_path, "a", encoding="utf-8")
        self._metrics_fh.write(json.dumps(record, default=float) + "\n")
        self._metrics_fh.flush()

    def close(self) -> None:
        if self._metrics_fh is not None:
            self._metrics_fh.close()
            self._metrics_fh = None

    def truncate_metrics(self, step: int) -> None:
        """Drop records logged after ``step`` (by a session that crashed after its last checkpoint)."""
        if not self.writer or not self.metrics_path.is_file():
            return
        self.close()
        lines = self.metrics_path.read_text(encoding="utf-8").splitlines()
        kept = []
        for line in lines:
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue
            if not isinstance(rec.get("step"), int) or rec["step"] <= step:
                kept.append(line)
        if len(kept) != len(lines):
            from neuralsight.io import atomic_write_text

            atomic_write_text(self.metrics_path, "".join(f"{line}\n" for line in kept))

    def child(self, name: str) -> Run:
        """The sub-run ``<run>/models/<name>/`` for one more model of the same task (its own checkpoints/ and
        metrics.jsonl), created when this run writes."""
        sub = Run(path=self.path / "models" / name, task=self.task, writer=self.writer)
        if self.writer:
            sub.checkpoints.mkdir(parents=True, exist_ok=True)
        return sub

    def write_json(self, name: str, obj: Any) -> Path:
        from neuralsight.io import atomic_write_json

        path = self.path / name
        if self.writer:
            atomic_write_json(path, obj)
        return path


def read_metrics(run_dir: Path) -> list[dict]:
    path = Path(run_dir) / "metrics.jsonl"
    if not path.is_file():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line:
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a line cut by a crash; the rest is still good
    return out


def create(task: str, name: str, root: Path | None = None, writer: bool = True, stamp: str | None = None) -> Run:
    root = Path(root) if root is not None else RUNS_ROOT
    stamp = stamp or time.strftime("%Y%m%d-%H%M%S")
    path = root / task / f"{stamp}-{name}"
    n = 1
    while writer and path.exists():
        n += 1
        path = root / task / f"{stamp}-{name}-{n}"
    run = Run(path=path, task=task, writer=writer)
    if writer:
        for sub in (path, run.checkpoints, run.figures, run.samples):
            sub.mkdir(parents=True, exist_ok=True)
    return run


def open_run(path: Path, writer: bool = True) -> Run:
    path = Path(path)
    cfg = path / "config.toml"
    if not cfg.is_file():
        raise UserError(f"{path} is not a neuralsight run directory (no config.toml)",
                        "pass a folder under runs/<task>/, see `neuralsight runs`")
    return Run(path=path, task=read_run_task(path), writer=writer)


def read_config(run_dir: Path) -> dict:
    """The run's ``config.toml`` as a dict (with its ``task`` key); a UserError when it is not a run directory."""
    from neuralsight.config import load_toml

    path = Path(run_dir) / "config.toml"
    if not path.is_file():
        raise UserError(f"{run_dir} is not a neuralsight run directory (no config.toml)",
                        "pass a folder under runs/<task>/, see `neuralsight runs`")
    return load_toml(path)


def read_summary(run_dir: Path) -> dict:
    """The run's ``summary.json``; empty when the run has none yet (training, or stopped before the end)
    or when it cannot be read (a summary is rewritten whole, so a broken one is a foreign file)."""
    path = Path(run_dir) / "summary.json"
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def read_run_task(path: Path) -> str:
    data = read_config(path)
    task = data.get("task")
    if not isinstance(task, str):
        raise UserError(f"{path}/config.toml names no task", "re-create the run with `neuralsight train`")
    return task


def list_runs(root: Path | None = None) -> list[Path]:
    root = Path(root) if root is not None else RUNS_ROOT
    if not root.is_dir():
        return []
    return sorted(p.parent for p in root.glob("**/config.toml"))


def find_run(spec: Path | str, root: Path | None = None) -> Path:
    """A run directory from what a user typed: a path, or ``latest`` / ``latest:TASK``: the newest run under
    ``root`` (default ``$NEURALSIGHT_RUNS``, else ``runs/``), by its time stamp."""
    import os

    text = str(spec)
    if text == "latest" or text.startswith("latest:"):
        task = text.partition(":")[2] or None
        root = Path(root or os.environ.get("NEURALSIGHT_RUNS") or RUNS_ROOT)
        found = [p for p in list_runs(root) if task is None or p.parent.name == task]
        if not found:
            where = f"'{task}' runs" if task else "runs"
            raise UserError(f"no {where} under {root}/ for '{text}'", "train one first, or point NEURALSIGHT_RUNS at the runs folder")
        return max(found, key=lambda p: (p.name[:15], (p / "config.toml").stat().st_mtime))
    path = Path(spec)
    if not path.is_dir():
        raise UserError(f"run directory {path} does not exist", "list saved runs with `neuralsight runs`")
    open_run(path)  # a clear error when it is not a run directory
    return path
