"""``export_run``: write a saved run's model as ONNX or TorchScript, run the file on real inputs from the run's
data, compare it with the PyTorch model, and publish it (with its metadata) only when it agrees.

The file is written under a temporary name beside its target; the check runs on that file; a file that fails the
check is deleted, so a path ``export`` names always holds a checked model. Beside it goes ``<file>.json`` with
the same metadata the file carries inside, and the check's numbers.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

import neuralsight.export.classify as classify
import neuralsight.export.forecast as forecast
import neuralsight.export.segment as segment
import neuralsight.export.textgen as textgen
from neuralsight.errors import UserError
from neuralsight.export.formats import SUFFIX, Runner, embed_metadata, require, write
from neuralsight.export.spec import ExportSpec

ADAPTERS = {"classify": classify.spec, "segment": segment.spec_2d, "segment3d": segment.spec_3d,
            "textgen": textgen.spec, "forecast": forecast.spec}


@dataclass
class Check:
    """How the exported file compared with PyTorch on every case."""

    runtime: str
    inputs: str
    cases: int
    tolerance: dict
    max_abs_diff: float = 0.0
    outputs: dict = field(default_factory=dict)   # {name: {"max_abs_diff": ...} or {"mismatched": ...}}
    failure: str | None = None                    # the first violation, in words

    @property
    def passed(self) -> bool:
        return self.failure is None


@dataclass
class ExportResult:
    task: str
    format: str
    path: Path | None             # None when the check failed (nothing was written)
    metadata_path: Path | None
    check: Check
    seconds: float

    @property
    def passed(self) -> bool:
        return self.check.passed

    def to_dict(self) -> dict:
        out = asdict(self)
        out.update(path=str(self.path) if self.path else None, passed=self.passed,
                   metadata_path=str(self.metadata_path) if self.metadata_path else None)
        return out


class _Rejected(Exception):
    """The exported file failed its check."""


def _spec(saved, model: str | None) -> ExportSpec:
    name = saved.task.name
    if name not in ADAPTERS:
        raise UserError(f"`neuralsight export` does not apply to a '{name}' run", f"it exports {', '.join(ADAPTERS)}")
    return ADAPTERS[name](saved, model)


def compare(spec: ExportSpec, run, runtime: str) -> Check:
    """Run ``run`` (the exported file) and ``spec.reference`` (PyTorch) on every case and compare the outputs."""
    check = Check(runtime, spec.inputs, len(spec.cases), spec.tolerance.to_dict())
    for number, case in enumerate(spec.cases, 1):
        with torch.no_grad():
            want = dict(zip(spec.output_names, [t.detach().cpu().numpy() for t in spec.reference(*case)],
                            strict=True))
        for name, got in zip(spec.output_names, run(case), strict=True):
            where, stats = f"output '{name}' of case {number}", check.outputs.setdefault(name, {})
            if got.shape != want[name].shape:
                failure = f"{where} has shape {list(got.shape)}, PyTorch's {list(want[name].shape)}"
            elif np.issubdtype(want[name].dtype, np.floating):
                failure = _compare_values(got, want[name], spec.tolerance, where, stats)
                check.max_abs_diff = max(check.max_abs_diff, stats["max_abs_diff"])
            else:
                failure = _compare_indices(got, want, name, spec, where, stats)
            check.failure = check.failure or failure
    return check


def _compare_values(got, want, tol, where: str, stats: dict) -> str | None:
    diff = np.abs(got.astype(np.float64) - want.astype(np.float64))
    stats["max_abs_diff"] = max(stats.get("max_abs_diff", 0.0), float(diff.max(initial=0.0)))
    if not np.isfinite(got).all():
        return f"{where} holds NaN or infinite values"
    allowed = tol.atol + tol.rtol * np.abs(want.astype(np.float64))
    if (diff <= allowed).all():
        return None
    i = np.unravel_index(int(np.argmax(diff - allowed)), diff.shape)
    return f"{where} differs by {diff[i]:.3g} where PyTorch gives {float(want[i]):.6g} (tolerance {allowed[i]:.3g})"


def _compare_indices(got, want: dict, name: str, spec: ExportSpec, where: str, stats: dict) -> str | None:
    """Class indices must be equal, except (for an argmax) where PyTorch's two best scores lie within the
    tolerance of each other, so that rounding may pick either."""
    wrong = got != want[name]
    stats["mismatched"] = stats.get("mismatched", 0) + int(wrong.sum())
    if name in spec.argmax_of:
        source, axis = spec.argmax_of[name]
        scores = np.sort(want[source].astype(np.float64), axis=axis)
        top, second = np.take(scores, -1, axis=axis), np.take(scores, -2, axis=axis)
        tol = spec.tolerance
        wrong &= (top - second) > 2 * (tol.atol + tol.rtol * np.abs(top))
    return f"{where} differs from PyTorch at {int(wrong.sum())} of {wrong.size} positions" if wrong.any() else None


def export_run(saved, fmt: str, out: Path | None = None, model: str | None = None) -> ExportResult:
    """Export ``saved``'s model (``model``: one of a forecast run's models) as ``fmt`` to ``out``.

    Default ``out``: ``RUN/export/<task>.onnx`` (or ``.pt`` for TorchScript). Returns the result of the check;
    when it failed, nothing was written and ``path`` is None. Raises UserError before any work when the format's
    packages are missing.
    """
    from neuralsight import __version__
    from neuralsight.io import atomic_path, atomic_write_json

    runtime = require(fmt)
    if out is not None and Path(out).suffix.lower() == ".json":
        raise UserError(f"--out {out}: the metadata go to <model file>.json beside the model",
                        f"name the model file, e.g. {Path(out).with_suffix(SUFFIX[fmt])}")
    started = time.perf_counter()
    spec = _spec(saved, model)
    target = Path(out) if out is not None else saved.path / "export" / f"{spec.name}{SUFFIX[fmt]}"
    sidecar = target.with_name(target.name + ".json")   # model.onnx.json: never a file the run itself holds
    metadata = {"neuralsight_version": __version__, "task": saved.task.name, "format": fmt,
                "run": str(saved.path), **spec.io_metadata()}
    if set(metadata) & set(spec.metadata):
        raise ValueError(f"an exporter's metadata may not redefine {sorted(set(metadata) & set(spec.metadata))}")
    metadata.update(spec.metadata)
    try:
        with atomic_path(target) as tmp:
            write(fmt, spec, tmp)
            check = compare(spec, Runner(fmt, tmp, spec.input_names), runtime)
            if not check.passed:
                raise _Rejected  # leaving the block by an exception deletes the temporary file
            metadata["check"] = {k: v for k, v in asdict(check).items() if k != "failure"}
            embed_metadata(fmt, tmp, metadata)
    except _Rejected:
        return ExportResult(saved.task.name, fmt, None, None, check, time.perf_counter() - started)
    atomic_write_json(sidecar, metadata)
    return ExportResult(saved.task.name, fmt, target, sidecar, check, time.perf_counter() - started)
