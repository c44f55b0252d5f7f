"""torchrun / DDP support: detect the environment, initialise, shard, and let rank 0 write."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass

_initialised = False  # this process joined a process group (even if it was destroyed since)


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def detect() -> DistInfo:
    """Read torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK); a plain launch is rank 0 of 1."""
    if "RANK" in os.environ and "WORLD_SIZE" in os.environ:
        return DistInfo(int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), int(os.environ.get("LOCAL_RANK", 0)))
    return DistInfo()


def init(info: DistInfo, device) -> None:
    import torch.distributed as dist

    if not info.enabled or dist.is_initialized():
        return
    global _initialised
    backend = "nccl" if device.type == "cuda" else "gloo"
    dist.init_process_group(backend=backend)
    _initialised = True


def shutdown() -> None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def exit_process(code: int | str | None) -> None:
    """End the process with ``code`` (as ``sys.exit`` takes it); one that joined a process group skips
    Python's interpreter finalization.

    torch's gloo worker threads can still be releasing a finished collective's tensors when the main thread
    reaches interpreter finalization; the release takes the GIL, the dying interpreter ends the thread, and
    libstdc++ aborts the process ("terminate called without an active exception", SIGABRT) after all its work
    was done and written. That race lost 6 of 100 two-process runs of the DDP test on a loaded 2-core CPU (0 of
    10 idle; core dump: a ``ProcessGroupGloo::runLoop`` thread in ``~AsyncBarrierWork`` -> ``decref_pyobject``
    while the main thread was in ``Py_FinalizeEx``). Everything this process writes is written and renamed
    before it gets here, so flushing the standard streams and leaving with ``os._exit`` loses nothing.
    """
    if not _initialised:
        sys.exit(code)
    if code is not None and not isinstance(code, int):  # what Python does with sys.exit("message")
        print(code, file=sys.stderr)
        code = 1
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code or 0)


def barrier() -> None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def broadcast_object(obj, src: int = 0):
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]

