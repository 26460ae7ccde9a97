"""exit_rank: the status is the process's, buffered output reaches the pipe, teardown is skipped."""

from __future__ import annotations

import subprocess
import sys

import pytest

SCRIPT = """
import atexit, sys
from hai.scale.rank_exit import exit_rank
atexit.register(lambda: print("teardown ran"))
print("result written", end="")
sys.stderr.write("warned")
exit_rank({status})
"""


@pytest.mark.parametrize(("status", "code"), [(0, 0), (3, 3), (None, 0)])
def test_exit_rank_flushes_and_skips_teardown(status: int | None, code: int) -> None:
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT.format(status=status)], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == code
    assert out.stdout == "result written"  # flushed though stdout is a pipe; atexit did not run
    assert out.stderr == "warned"
