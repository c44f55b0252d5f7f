"""Export a saved run's model to ONNX or TorchScript, checked against PyTorch on real inputs from the run's data.

``export_run(saved, "onnx" | "torchscript", out=None, model=None)`` returns an :class:`ExportResult`; the CLI's
``neuralsight export`` prints it. One module per task builds the graph to export (``classify``, ``segment`` for
segment and segment3d, ``textgen``, ``forecast``); ``formats`` writes, embeds metadata and runs files back;
``core`` checks and publishes. The ONNX side needs the ``export`` extra (``onnx``, ``onnxruntime``).
"""

from neuralsight.export.core import ADAPTERS, ExportResult, export_run
from neuralsight.export.formats import FORMATS, read_metadata

__all__ = ["ADAPTERS", "FORMATS", "ExportResult", "export_run", "read_metadata"]
