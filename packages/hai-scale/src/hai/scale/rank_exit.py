"""Leave a rank process without running the interpreter's finalisation.

After a rank has written its results, destroyed its process group and flushed its output,
nothing is left to do; yet on these 2-core machines a rank sometimes aborted at exit with
"terminate called without an active exception" (SIGABRT, exit status 134), a C++ thread object
of torch's gloo backend destroyed while still joinable during interpreter shutdown (see
pytorch/pytorch#190489, #179291). The job then failed after its work was done. ``os._exit``
skips that teardown; everything that must reach disk is flushed first.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys


def exit_rank(status: int | None) -> None:
    """Flush logging, stdout and stderr, then end the process at once with ``status`` (None: 0)."""
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        # closed or broken: nothing more can be written anyway
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(0 if status is None else int(status))
