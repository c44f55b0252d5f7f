"""Shared benchmark helpers: the result-file writer (DESIGN.md top level), hardware, medians, targets.

Every ``benchmarks/<name>.py`` writes ``benchmarks/results/<name>-<hardware>.json``::

    {"benchmark", "date", "git", "hardware": {"device", "cpu", "threads", "loadavg", ...}, "command",
     "targets": [{"name", "target", "measured", "met"}], "runs": [...], ...extra}

A benchmark measures and records; it never asserts. ``loadavg`` is recorded at the start and end because
shared machines make timings pessimistic.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
if str(ROOT / "src") not in sys.path:
    sys.path.insert(0, str(ROOT / "src"))


def git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return out.stdout.strip() + ("+dirty" if dirty else "") if out.returncode == 0 else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def loadavg() -> list[float]:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return []


def hardware(device) -> dict:
    """Device, CPU, threads, torch version, GPU name (if any) and the current load average."""
    from neuralsight.engine.device import describe_hardware

    info = describe_hardware(device)
    info["loadavg"] = loadavg()
    info["cpu_count"] = os.cpu_count()
    return info


def hardware_tag(device, requested: str = "auto") -> str:
    if requested not in ("auto", ""):
        return requested
    from neuralsight.engine.device import hardware_tag as tag

    return tag(device)


def median(values: list[float]) -> float | None:
    values = [v for v in values if v is not None]
    return float(statistics.median(values)) if values else None


def target(name: str, op: str, goal: float, measured: float | None) -> dict:
    """A target row: ``op`` is ``>=`` or ``<=``; ``met`` is False when nothing was measured."""
    met = measured is not None and (measured >= goal if op == ">=" else measured <= goal)
    return {"name": name, "target": f"{op} {goal}", "measured": None if measured is None else round(measured, 4),
            "met": bool(met)}


def write_result(name: str, hw_tag: str, device, command: str, targets: list[dict], runs: list[dict],
                 extra: dict | None = None, started_load: list[float] | None = None) -> Path:
    """Write ``benchmarks/results/<name>-<hw_tag>.json`` atomically; returns the path."""
    from neuralsight.io import atomic_write_json

    hw = hardware(device)
    if started_load is not None:
        hw["loadavg_start"] = started_load
        hw["loadavg_end"] = hw.pop("loadavg")
    doc = {"benchmark": name, "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "git": git_commit(), "hardware": hw,
           "command": command, "targets": targets, "runs": runs, **(extra or {})}
    path = RESULTS / f"{name}-{hw_tag}.json"
    atomic_write_json(path, doc)
    return path


def base_parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--hardware", default="auto", help="tag for the result file: auto, cpu, h100, ...")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"])
    p.add_argument("--seeds", type=int, default=3, help="seeds per configuration (median reported)")
    return p


def command_line() -> str:
    return "python " + " ".join([os.path.relpath(sys.argv[0], ROOT), *sys.argv[1:]])
