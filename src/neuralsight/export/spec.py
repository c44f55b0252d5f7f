"""What one exported graph is: the module to trace, its inputs and outputs, the real inputs that check it, and
the numbers a user needs to feed it (:class:`ExportSpec`), plus the tolerance it is checked against.

Each task's module in this package (``classify``, ``segment``, ``textgen``, ``forecast``) builds an
:class:`ExportSpec` from a :class:`~neuralsight.tasks.base.SavedRun`; ``core.export_run`` writes and checks it.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from neuralsight.errors import UserError


@dataclass(frozen=True)
class Tolerance:
    """An exported output passes when ``|exported - pytorch| <= atol + rtol * |pytorch|`` everywhere (fp32)."""

    atol: float
    rtol: float = 0.0

    def describe(self) -> str:
        return f"{self.atol:g}" + (f" + {self.rtol:g} x |value|" if self.rtol else "")

    def to_dict(self) -> dict:
        return {"atol": self.atol, "rtol": self.rtol, "precision": "fp32", "text": self.describe()}


@dataclass
class ExportSpec:
    """One graph to export.

    Attributes:
        name: file stem of the default output (``classify``, ``forecast-lstm``...).
        module: the ``nn.Module`` traced into the file (a small wrapper of the run's model), in eval mode.
        input_names, output_names: the graph's input and output names, in ``forward``'s order.
        dynamic_axes: ``{name: {axis: symbolic name}}`` for every input and output axis that may vary.
        cases: real inputs from the run's data, each a tuple of tensors in ``input_names`` order; the first
            is also the example the graph is traced with.
        reference: the PyTorch model applied through its own API (not through ``module``) to one case;
            returns one tensor per output.
        inputs: what ``cases`` are, in words (printed with the check).
        metadata: what a user needs to feed the graph and read its outputs (JSON-able).
        tolerance: the fp32 tolerance the check holds the exported file to.
        argmax_of: ``{integer output: (float output, axis)}``: a class-index output is the argmax of that
            output; it may differ from PyTorch's only where two logits lie within the tolerance of each other.
    """

    name: str
    module: Any
    input_names: list[str]
    output_names: list[str]
    dynamic_axes: dict[str, dict[int, str]]
    cases: list[tuple]
    reference: Callable[..., tuple]
    inputs: str
    metadata: dict
    tolerance: Tolerance
    argmax_of: dict[str, tuple[str, int]] = field(default_factory=dict)

    def io_metadata(self) -> dict:
        """Name, dtype and shape (symbolic where the axis is dynamic) of every input and output."""
        import torch

        example = self.cases[0]
        with torch.no_grad():
            outputs = self.module(*example)
        outputs = outputs if isinstance(outputs, tuple) else (outputs,)

        def describe(name, tensor) -> dict:
            dims = self.dynamic_axes.get(name, {})
            return {"name": name, "dtype": str(tensor.dtype).removeprefix("torch."),
                    "shape": [dims.get(i, int(s)) for i, s in enumerate(tensor.shape)]}

        return {"inputs": [describe(n, t) for n, t in zip(self.input_names, example, strict=True)],
                "outputs": [describe(n, t) for n, t in zip(self.output_names, outputs, strict=True)]}


def cpu_copy(model):
    """A float32 CPU copy of a saved run's model in eval mode (the run's own stays where it is)."""
    return copy.deepcopy(model).cpu().float().eval()


def architecture(saved, child: str = "") -> dict:
    """The model's registry name and constructor arguments, as its checkpoint records them."""
    spec = saved.state(child).get("model") or {}
    return {"name": spec.get("name"), "kwargs": spec.get("kwargs")}


def no_model_choice(task: str, model: str | None) -> None:
    if model is not None:
        raise UserError(f"--model {model} does not apply to a {task} run: it has one model",
                        "--model picks one of a forecast run's models")
