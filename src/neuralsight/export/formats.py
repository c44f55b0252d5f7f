"""Writing a traced graph as ONNX or TorchScript, its metadata inside the file, and running the file back.

ONNX goes through torch's TorchScript-based exporter (``dynamo=False``): it needs only the ``onnx`` package
(the torch.export-based one also needs ``onnxscript``), it maps ``nn.LSTM`` / ``nn.GRU`` / ``nn.RNN`` onto
ONNX's own recurrent operators, and it keeps the shapes named in ``dynamic_axes`` symbolic. The written file
is run by onnxruntime; a TorchScript file by ``torch.jit.load``. The metadata go into the ONNX model's
``metadata_props`` (every value JSON-encoded) or the TorchScript archive's ``extra/neuralsight.json``.
"""

from __future__ import annotations

import contextlib
import json
import warnings
from pathlib import Path

import torch

from neuralsight.errors import UserError

FORMATS = ("onnx", "torchscript")
SUFFIX = {"onnx": ".onnx", "torchscript": ".pt"}
OPSET = 17
EXTRA_FILE = "neuralsight.json"


def require(fmt: str) -> str:
    """The runtime's name and version; a UserError naming the extra to install when it is missing."""
    if fmt not in FORMATS:
        raise UserError(f"--format {fmt} is not an export format", f"use {' or '.join(FORMATS)}")
    if fmt == "torchscript":
        return f"torch.jit {torch.__version__}"
    try:
        import onnx  # noqa: F401
        import onnxruntime
    except ImportError as err:
        raise UserError(f"--format onnx needs the onnx and onnxruntime packages ({err.name} is not installed)",
                        "pip install 'neuralsight[export]'") from None
    return f"onnxruntime {onnxruntime.__version__}"


@contextlib.contextmanager
def _quiet():
    """Tracing warns on every Python-level branch over a shape (each is checked by running the file on real
    inputs of several shapes instead), and torch marks both tracers deprecated; neither is the user's concern."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        # The LSTM exporter warns about batch sizes unless h0/c0 are graph inputs, which ours always are.
        warnings.filterwarnings("ignore", category=UserWarning, module=r"torch\.onnx")
        yield


def write(fmt: str, spec, path: Path) -> None:
    """Trace ``spec.module`` with its first case and write the graph to ``path``."""
    module, example = spec.module.eval(), spec.cases[0]
    try:
        with _quiet(), torch.no_grad():
            if fmt == "onnx":
                torch.onnx.export(module, example, str(path), dynamo=False, input_names=spec.input_names,
                                  output_names=spec.output_names, dynamic_axes=spec.dynamic_axes,
                                  opset_version=OPSET, do_constant_folding=True)
            else:
                torch.jit.save(torch.jit.trace(module, example, check_trace=False), str(path))
    finally:
        # torch.onnx.export restores the top module's training flag recursively: a wrapper built in training
        # mode would hand back its net with dropout and batch statistics switched on.
        module.eval()


def embed_metadata(fmt: str, path: Path, metadata: dict) -> None:
    """Put ``metadata`` into the written file, leaving its graph as it was checked."""
    if fmt == "torchscript":
        with _quiet():
            torch.jit.save(torch.jit.load(str(path), map_location="cpu"), str(path),
                           _extra_files={EXTRA_FILE: json.dumps(metadata)})
        return
    import onnx

    model = onnx.load(str(path))
    del model.metadata_props[:]
    for key, value in metadata.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, json.dumps(value)
    model.producer_name = "neuralsight"
    onnx.save(model, str(path))


def read_metadata(fmt: str, path: Path) -> dict:
    """The metadata embedded in an exported file (what :func:`write` put there)."""
    if fmt == "onnx":
        import onnx

        return {p.key: json.loads(p.value) for p in onnx.load(str(path)).metadata_props}
    extra = {EXTRA_FILE: ""}
    with _quiet():
        torch.jit.load(str(path), map_location="cpu", _extra_files=extra)
    return json.loads(extra[EXTRA_FILE])


class Runner:
    """Runs an exported file on tuples of tensors and returns numpy arrays, one per output."""

    def __init__(self, fmt: str, path: Path, input_names: list[str]):
        self.fmt, self.input_names = fmt, input_names
        if fmt == "onnx":
            import onnxruntime

            options = onnxruntime.SessionOptions()
            options.log_severity_level = 3
            self.session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        else:
            with _quiet():
                self.module = torch.jit.load(str(path), map_location="cpu").eval()

    def __call__(self, inputs: tuple) -> list:
        if self.fmt == "onnx":
            return list(self.session.run(None, {n: t.numpy() for n, t in zip(self.input_names, inputs, strict=True)}))
        with torch.no_grad():
            out = self.module(*inputs)
        return [t.numpy() for t in (out if isinstance(out, (tuple, list)) else (out,))]
