"""Device and precision selection."""

from __future__ import annotations

import contextlib
import functools
import platform
from pathlib import Path

from neuralsight.errors import UserError


@functools.lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith("flags"):
            return frozenset(line.split(":", 1)[1].split())
    return frozenset()


def cpu_has_bf16() -> bool:
    """True on CPUs with native bf16 matrix units (Intel AMX or AVX-512 BF16)."""
    flags = cpu_flags()
    return bool({"amx_bf16", "avx512_bf16"} & flags)


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def resolve_device(name: str = "auto"):
    import torch

    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", torch.cuda.current_device())
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda was asked for, but torch sees no CUDA GPU", "use --device cpu or auto")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise UserError("--device mps was asked for, but this machine has no MPS backend", "use --device cpu or auto")
    if name == "cuda":
        return torch.device("cuda", torch.cuda.current_device())  # an index: DDP's device_ids needs one
    return torch.device(name)


def resolve_precision(name: str, device) -> str:
    """Map ``auto`` to bf16 where the hardware computes it natively, fp32 otherwise."""
    import torch

    if name != "auto":
        if name == "fp16" and device.type == "cpu":
            raise UserError("--precision fp16 is for GPUs", "use bf16 or fp32 on a CPU")
        return name
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    if device.type == "cpu":
        return "bf16" if cpu_has_bf16() else "fp32"
    return "fp32"


def autocast(device, precision: str):
    """The autocast context for a precision name; fp32 gives a no-op context."""
    import torch

    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


def describe_hardware(device) -> dict:
    import torch

    info = {"device": str(device), "cpu": cpu_name(), "threads": torch.get_num_threads(),
            "torch": torch.__version__}
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
        info["gpu_count"] = torch.cuda.device_count()
        info["gpu_memory_gb"] = round(torch.cuda.get_device_properties(device).total_memory / 2**30, 1)
    import os

    if "WORLD_SIZE" in os.environ:
        info["world_size"] = int(os.environ["WORLD_SIZE"])
    return info


def hardware_tag(device) -> str:
    """Short hardware name for benchmark file names: ``cpu``, ``h100``, ``a100``..."""
    if device.type != "cuda":
        return device.type
    import torch

    name = torch.cuda.get_device_name(device).lower()
    for tag in ("h200", "h100", "a100", "l40s", "l4", "a10", "v100", "t4", "4090", "3090"):
        if tag in name:
            return tag
    return "gpu"
