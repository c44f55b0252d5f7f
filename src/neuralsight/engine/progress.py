"""Progress of long steps, reported to stderr (library code never prints results; it reports progress here)."""

from __future__ import annotations

import contextlib
import sys
import time


@contextlib.contextmanager
def status(label: str):
    """``label ...`` when the step starts and ``label: done in 3.2 s`` when it ends."""
    t0 = time.time()
    print(f"{label} ...", file=sys.stderr, flush=True)
    yield
    print(f"{label}: done in {time.time() - t0:.1f} s", file=sys.stderr, flush=True)
