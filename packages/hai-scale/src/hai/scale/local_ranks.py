"""Start N ranks of a Python module on this machine, wait for them, and stop them cleanly.

The ranks meet through a file in a private temporary folder (``file://`` rendezvous), so no
port is opened and nothing listens on a network interface. If one rank fails, the others are
stopped and the rank's own error is raised (a :class:`~hai.shared.HaiError` the rank wrote
to ``errorR.json``, else its log). Ctrl-C or SIGTERM stops every rank and removes the folder.
On a cluster, start the same module with torchrun instead (it sets ``RANK``, ``WORLD_SIZE``).

Hand-written rather than torchrun's elastic agent because a local run needs none of its
restarts or TCP store, and must leave no process and no folder behind when interrupted.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

from hai.shared import HaiError
from hai.shared.checks import positive_float, positive_int

__all__ = ["RankJob", "rank_folder", "run_ranks"]

_GRACE_S = 5.0  # how long the other ranks may take to exit after one failed


class RankJob:
    """The folder of one local job and the command line of its ranks."""

    def __init__(self, folder: Path, nproc: int) -> None:
        self.folder = folder
        self.nproc = nproc
        self.init = f"file://{folder / 'rendezvous'}"

    def rank_args(self, rank: int) -> list[str]:
        return ["--init", self.init, "--rank", str(rank), "--world", str(self.nproc)]


@contextmanager
def rank_folder(prefix: str = "hai-ranks-") -> Iterator[Path]:
    """A private temporary folder, removed on exit whatever happens."""
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _stop(procs: Sequence[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        if p.poll() is None:
            p.terminate()
    deadline = time.monotonic() + 5
    for p in procs:
        try:
            p.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def run_ranks(
    folder: Path,
    nproc: int,
    command: Callable[[RankJob, int], list[str]],
    *,
    timeout_s: float,
    what: str = "job",
) -> None:
    """Run ``command(job, rank)`` (an argv after ``python``) for every rank; raise if one fails."""
    nproc = positive_int("nproc", nproc, maximum=256)
    timeout_s = positive_float("timeout", timeout_s)
    job = RankJob(folder, nproc)
    procs: list[subprocess.Popen[bytes]] = []
    # The handlers only note the signal; KeyboardInterrupt is raised from the loops below, at a
    # safe point. Raised from the handler itself it could land inside Popen.poll() while that
    # holds the Popen's wait lock, and the wait() that stops the ranks then blocks forever
    # (seen: a launcher hung on SIGTERM with its ranks left as zombies).
    signals: list[int] = []

    def on_signal(signum: int, frame: FrameType | None) -> None:
        signals.append(signum)

    def check() -> None:
        if signals:
            raise KeyboardInterrupt

    previous: dict[int, Any] = {}
    try:
        previous[signal.SIGTERM] = signal.signal(signal.SIGTERM, on_signal)
        if signal.getsignal(signal.SIGINT) is signal.default_int_handler:  # an ignored SIGINT stays so
            previous[signal.SIGINT] = signal.signal(signal.SIGINT, on_signal)
    except ValueError:  # not the main thread: leave the signals alone
        pass
    try:
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        for rank in range(nproc):
            check()
            with open(folder / f"rank{rank}.log", "wb") as log:
                procs.append(
                    subprocess.Popen(
                        [sys.executable, *command(job, rank)], stdout=log, stderr=subprocess.STDOUT, env=env
                    )
                )
        deadline = time.monotonic() + timeout_s
        while any(p.poll() is None for p in procs):
            check()
            if any(p.returncode not in (None, 0) for p in procs) or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        if any(p.returncode not in (None, 0) for p in procs):
            # The rank whose own error brought the job down may still be writing errorR.json
            # when a peer fails on the closed connection: give every rank a moment to exit by
            # itself, so that error is raised rather than the peer's gloo error.
            grace = min(deadline, time.monotonic() + _GRACE_S)
            while any(p.poll() is None for p in procs) and time.monotonic() < grace:
                check()
                time.sleep(0.05)
        check()
        failed = [r for r, p in enumerate(procs) if p.returncode not in (None, 0)]
        hung = not failed and any(p.poll() is None for p in procs)
        _stop(procs)
        for rank in range(nproc):
            error = folder / f"error{rank}.json"
            if error.exists():
                raise HaiError(json.loads(error.read_text())["error"])
        if failed:
            tail = (folder / f"rank{failed[0]}.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"rank {failed[0]} of the {what} failed:\n{tail}")
        if hung:
            raise HaiError(f"the {what} did not finish within {timeout_s:g} s; every rank was stopped")
    finally:
        _stop(procs)
        for signum, handler in previous.items():
            signal.signal(signum, handler)
