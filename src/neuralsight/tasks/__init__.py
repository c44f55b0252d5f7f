"""Tasks: data + model + loss + metrics + figures for one kind of problem.

Each task module (``tasks/<name>.py``) provides:

- ``PRESET``: the default preset name in ``configs/`` (e.g. ``"fashion"``);
- ``Config``: its config dataclass with sections ``data``, ``model``, ``train`` (a ``TrainConfig``);
- ``train(cfg, env, run, resume) -> dict``: trains (through ``engine.trainer.fit``), writes figures and
  samples, and returns the summary (``{"headline": {"name", "value"}, "metrics": {...}, ...}``);
- ``report_sections(run_dir) -> list[report.html.Section]``: the task's part of ``report.html``;
- optionally ``predict``, ``evaluate``, ``explain``, ``generate`` over a saved run.
"""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

from neuralsight.errors import UserError

TASKS = ("classify", "textgen", "segment", "segment3d", "forecast")


def available() -> list[str]:
    return [t for t in TASKS if importlib.util.find_spec(f"neuralsight.tasks.{t}") is not None]


def get_task(name: str) -> ModuleType:
    if name not in TASKS:
        raise UserError(f"unknown task '{name}'", f"choose one of {', '.join(TASKS)}")
    if importlib.util.find_spec(f"neuralsight.tasks.{name}") is None:
        raise UserError(f"task '{name}' is not part of this version of neuralsight")
    return importlib.import_module(f"neuralsight.tasks.{name}")
