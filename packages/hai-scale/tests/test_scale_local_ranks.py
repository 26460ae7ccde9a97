"""The local rank launcher: a failing rank's error, a hang's timeout, and SIGINT/SIGTERM leave
no process and no folder behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from hai.scale.local_ranks import rank_folder, run_ranks
from hai.shared import HaiError

pytestmark = pytest.mark.timeout(120)

SLEEPER = "import os, sys, time; open(sys.argv[1], 'w').write(str(os.getpid())); time.sleep(600)"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill 0; it has exited all the same.
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


def test_a_rank_error_is_raised_and_the_others_are_stopped(tmp_path: Path):
    pid_file = tmp_path / "pid1"
    error = '{"error": "rank 0 says: bad input"}'

    def command(job, rank):
        if rank == 0:
            target = str(job.folder / "error0.json")
            code = f"import time, pathlib; time.sleep(0.5); pathlib.Path({target!r}).write_text({error!r})"
            return ["-c", code + "; raise SystemExit(2)"]
        return ["-c", SLEEPER, str(pid_file)]

    with rank_folder() as folder, pytest.raises(HaiError, match="rank 0 says: bad input"):
        run_ranks(folder, 2, command, timeout_s=60)
    assert not _alive(int(pid_file.read_text()))


def test_the_failing_ranks_own_error_wins_over_a_peer_that_failed_first():
    # Rank 1 finds the bad input, but rank 0 (seeing the closed connection) exits first with
    # a bare error; the launcher must still raise rank 1's message, not rank 0's log.
    error = '{"error": "rank 1 says: bad group size"}'

    def command(job, rank):
        if rank == 0:
            return ["-c", "raise SystemExit('gloo: connection closed by peer')"]
        target = str(job.folder / "error1.json")
        code = f"import time, pathlib; time.sleep(1.0); pathlib.Path({target!r}).write_text({error!r})"
        return ["-c", code + "; raise SystemExit(2)"]

    with rank_folder() as folder, pytest.raises(HaiError, match="rank 1 says: bad group size"):
        run_ranks(folder, 2, command, timeout_s=60)


def test_a_hang_is_stopped_at_the_timeout(tmp_path: Path):
    with rank_folder() as folder, pytest.raises(HaiError, match="did not finish within 1 s"):
        run_ranks(folder, 2, lambda job, rank: ["-c", SLEEPER, str(tmp_path / f"pid{rank}")], timeout_s=1)
    for rank in range(2):
        assert not _alive(int((tmp_path / f"pid{rank}").read_text()))


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_leaves_no_process_and_no_folder(tmp_path: Path, sig: signal.Signals):
    script = textwrap.dedent(
        f"""
        import signal, sys
        from pathlib import Path
        from hai.scale.local_ranks import rank_folder, run_ranks
        # as from a terminal: a launcher started in the background inherits an ignored SIGINT
        signal.signal(signal.SIGINT, signal.default_int_handler)
        SLEEPER = {SLEEPER!r}
        try:
            with rank_folder() as folder:
                Path({str(tmp_path / "folder")!r}).write_text(str(folder))
                cmd = lambda job, r: ["-c", SLEEPER, {str(tmp_path)!r} + f"/pid{{r}}"]
                run_ranks(folder, 2, cmd, timeout_s=300)
        except KeyboardInterrupt:
            sys.exit(130 if {int(sig)} == 2 else 143)
        """
    )
    launcher = subprocess.Popen([sys.executable, "-c", script])
    deadline = time.monotonic() + 30
    while not all((tmp_path / f"pid{r}").exists() for r in range(2)) and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(0.3)
    launcher.send_signal(sig)
    assert launcher.wait(timeout=30) == (130 if sig == signal.SIGINT else 143)
    for rank in range(2):
        assert not _alive(int((tmp_path / f"pid{rank}").read_text()))
    assert not Path((tmp_path / "folder").read_text()).exists()
