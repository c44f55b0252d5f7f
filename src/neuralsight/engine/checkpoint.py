"""Checkpoints that are atomic, resumable and never unpickle arbitrary objects.

Layout inside ``<run>/checkpoints/``, per tag (``last``, ``best``):

- ``<tag>.safetensors``: model weights (safetensors: no code can hide in it);
- ``<tag>.json``: model name and constructor arguments, config, step/epoch, best metric, Python/NumPy RNG;
- ``<tag>.state.pt``: optimizer and torch RNG states (and the GradScaler's and the weight average's, when
  used), loaded only with ``weights_only=True``. There is no scheduler state: the learning-rate schedule is a
  pure function of progress (``trainer.lr_at``).

Every file is written to a temporary name in the same folder and renamed into place; the JSON goes last
and records the step, so a crash mid-save leaves the previous checkpoint loadable.
"""

from __future__ import annotations

import json
import random
import warnings
from pathlib import Path

from neuralsight.errors import CheckpointError
from neuralsight.io import atomic_path, atomic_write_json


def unwrap(model):
    """The plain module inside DDP and torch.compile wrappers."""
    model = getattr(model, "module", model)
    return getattr(model, "_orig_mod", model)


def rng_state() -> tuple[dict, dict]:
    """(JSON-able Python/NumPy state, tensor torch state)."""
    import numpy as np
    import torch

    py = random.getstate()
    npst = np.random.get_state()
    plain = {"python": [py[0], list(py[1]), py[2]],
             "numpy": [npst[0], npst[1].tolist(), int(npst[2]), int(npst[3]), float(npst[4])]}
    tensors = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        tensors["cuda"] = torch.cuda.get_rng_state_all()
    return plain, tensors


def set_rng_state(plain: dict, tensors: dict) -> None:
    import numpy as np
    import torch

    if "python" in plain:
        v, st, g = plain["python"]
        random.setstate((v, tuple(st), g))
    if "numpy" in plain:
        name, keys, pos, has_gauss, cached = plain["numpy"]
        np.random.set_state((name, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))
    if "torch" in tensors:
        torch.set_rng_state(tensors["torch"])
    if "cuda" in tensors and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(tensors["cuda"])


def weights_for_saving(model) -> dict:
    """Every state-dict entry as its own contiguous CPU tensor.

    safetensors refuses tensors that share storage. cuDNN's RNNs keep all their weights as views into one
    flat buffer, and tied weights (embedding = decoder) share one tensor, so each entry is copied out.
    Loading sets tied parameters twice with the same values.
    """
    return {k: v.detach().to("cpu", copy=True).contiguous() for k, v in unwrap(model).state_dict().items()}


def save(directory: Path, tag: str, model, spec: dict, state: dict,
         optimizer=None, extra: dict | None = None) -> None:
    """Save weights, JSON state and (with an optimizer) the training state under ``tag``.

    ``extra`` adds tensors and plain containers to the training state (the GradScaler, the weight average).

    Each of the three files carries the step, so :func:`check_consistent` can tell a checkpoint torn
    by a crash between two renames from a whole one.
    """
    import torch
    from safetensors.torch import save_file

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    step = int(state.get("step", 0))
    with atomic_path(directory / f"{tag}.safetensors") as tmp:
        save_file(weights_for_saving(model), str(tmp), metadata={"step": str(step), "model": spec.get("name", "")})
    plain_rng, tensor_rng = rng_state()
    if optimizer is not None:
        blob = {"step": step, "optimizer": optimizer.state_dict(), "rng": tensor_rng}
        blob.update(extra or {})
        with atomic_path(directory / f"{tag}.state.pt") as tmp:
            torch.save(blob, tmp)
    payload = {"format": 1, "model": spec, **state, "rng": plain_rng}
    atomic_write_json(directory / f"{tag}.json", payload)


def check_consistent(directory: Path, tag: str, state: dict, blob: dict | None = None) -> None:
    """Raise CheckpointError when the weights or training state belong to another step than the JSON."""
    from safetensors import safe_open

    step = int(state.get("step", -1))
    path = Path(directory) / f"{tag}.safetensors"
    try:
        with safe_open(str(path), framework="pt") as fh:
            weights_step = (fh.metadata() or {}).get("step")
    except Exception as err:  # noqa: BLE001 - any parse failure means the same thing here
        raise CheckpointError(f"checkpoint weights {path} could not be read: {err}") from None
    found = {"weights": weights_step, "training state": None if blob is None else blob.get("step")}
    for what, value in found.items():
        if value is not None and int(value) != step:
            raise CheckpointError(
                f"checkpoint '{tag}' in {directory} is torn: {what} are from step {value}, state from step {step}",
                "a save was cut off; resume from an earlier copy of the run or start again")


def read_state(directory: Path, tag: str) -> dict:
    path = Path(directory) / f"{tag}.json"
    if not path.is_file():
        raise CheckpointError(f"no checkpoint '{tag}' in {directory}", "is this a neuralsight run directory?")
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CheckpointError(f"checkpoint state {path} is not valid JSON: {err}") from None


def load_weights(model, directory: Path, tag: str, device="cpu") -> None:
    """Load ``<tag>.safetensors`` into ``model`` (strict: every key present, none extra, shapes equal)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(directory) / f"{tag}.safetensors"
    if not path.is_file():
        raise CheckpointError(f"checkpoint weights {path} are missing")
    try:
        weights = load_file(str(path), device=str(device))
    except (SafetensorError, OSError, RuntimeError) as err:
        raise CheckpointError(f"checkpoint weights {path} could not be read: {err}") from None
    target = unwrap(model)
    expected = target.state_dict()
    missing = sorted(set(expected) - set(weights))
    unexpected = sorted(set(weights) - set(expected))
    wrong = sorted(k for k in set(expected) & set(weights) if expected[k].shape != weights[k].shape)
    if missing or unexpected or wrong:
        raise CheckpointError(
            f"checkpoint weights {path} do not fit the model: missing {missing[:3]}, unexpected {unexpected[:3]}, "
            f"wrong shape {wrong[:3]}", "was the run trained with a different model configuration?")
    target.load_state_dict(weights, strict=True)


def load_training_state(directory: Path, tag: str, device="cpu") -> dict:
    """Load the optimizer/RNG tensors (and extras). Only tensors and plain containers: never arbitrary pickles."""
    import pickle

    import torch

    path = Path(directory) / f"{tag}.state.pt"
    if not path.is_file():
        raise CheckpointError(f"training state {path} is missing; cannot resume exactly",
                              "resume from a run whose last checkpoint finished writing")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "pickle protocol" notes on hostile files
            return torch.load(path, map_location=device, weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CheckpointError(
            f"refusing to load {path}: it holds something other than tensors and plain data ({first})",
            "only load checkpoints you trust; neuralsight never unpickles arbitrary objects") from None
