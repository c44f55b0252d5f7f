"""engine.distributed.exit_process: a process that joined a group leaves without finalization, output flushed."""

from __future__ import annotations

import subprocess
import sys

import pytest

_SCRIPT = """
import sys
import neuralsight.engine.distributed as d
d._initialised = {joined}
sys.stdout.write("partial line, unflushed")
sys.stderr.write("to stderr")
import atexit
atexit.register(lambda: print("atexit ran"))
d.exit_process({code})
print("not reached")
"""


@pytest.mark.parametrize("joined", [True, False])
@pytest.mark.parametrize("code", [0, 2])
def test_exit_process_keeps_code_and_output(joined, code):
    proc = subprocess.run([sys.executable, "-c", _SCRIPT.format(joined=joined, code=code)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == code
    assert proc.stdout.startswith("partial line, unflushed")  # flushed before os._exit
    assert "to stderr" in proc.stderr
    assert "not reached" not in proc.stdout
    # os._exit skips interpreter finalization (atexit included); a plain process exits normally and runs it.
    assert ("atexit ran" in proc.stdout) is (not joined)


@pytest.mark.parametrize("joined", [True, False])
@pytest.mark.parametrize("code, rc", [(None, 0), ("'no such run'", 1)])
def test_exit_process_takes_what_sys_exit_takes(joined, code, rc):
    proc = subprocess.run([sys.executable, "-c", _SCRIPT.format(joined=joined, code=code)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == rc
    assert ("no such run" in proc.stderr) is (rc == 1)  # a message code is printed, as sys.exit prints it
