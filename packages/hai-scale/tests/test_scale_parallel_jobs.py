"""Job control of ``hai scale bnn-train --nproc 2``: signals stop every process, crashes are retried once.

Each test starts the real command (the launcher, torchrun's agent through
``hai.scale.parallel._torchrun``, two ranks) with ``TMPDIR`` pointing into the test's folder, so
the job's ``hai-bnn-*`` folder and the PID file each rank leaves there can be watched. Processes
are checked by PID (gone, or a zombie that nobody will run again).
"""

from __future__ import annotations

import importlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path

import pytest

from hai.scale.parallel import BNNConfig, launch
from hai.shared import HaiError

pytestmark = [
    pytest.mark.distributed,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc"),
]

launch_module = importlib.import_module("hai.scale.parallel.launch")
START_S = 90.0  # how long two ranks may take to start on a loaded machine
STOP_S = 15.0  # how long the job may take to stop after a signal (GRACE_S plus slack)


def _job(tmp_path: Path, *extra: str) -> subprocess.Popen[str]:
    cmd = [sys.executable, "-m", "hai.shared", "scale", "bnn-train", "--nproc", "2", "--data", "synthetic"]
    cmd += ["--mode", "sample", "--samples", "2", "--hidden", "8", "--eval-samples", "2", *extra]
    env = dict(os.environ, TMPDIR=str(tmp_path), OMP_NUM_THREADS="1")
    return subprocess.Popen(
        cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _parent(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def _ranks(tmp_path: Path, job: subprocess.Popen[str], old: Iterable[int] = ()) -> list[int]:
    """The PIDs of the job's two (new) ranks, once both have started."""
    old = set(old)
    deadline = time.monotonic() + START_S
    while time.monotonic() < deadline:
        pids = []
        for path in tmp_path.glob("hai-bnn-*/rank*.pid"):
            try:
                pids.append(int(path.read_text()))
            except (OSError, ValueError):
                continue
        pids = [p for p in pids if p not in old]
        if len(pids) == 2 and all(_alive(p) for p in pids):
            return sorted(pids)
        if job.poll() is not None:
            raise AssertionError(f"the job ended early ({job.returncode}): {job.communicate()}")
        time.sleep(0.05)
    job.kill()
    raise AssertionError("the ranks did not start in time")


def _listening(pids: Iterable[int]) -> list[str]:
    """The local addresses (hex, as /proc/net/tcp writes them) of the sockets ``pids`` listen on."""
    inodes = set()
    for pid in pids:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    out = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            cols = line.split()
            if cols[3] == "0A" and cols[9] in inodes:  # LISTEN
                out.append(cols[1].split(":")[0])
    return out


def _finish(job: subprocess.Popen[str], timeout: float) -> tuple[int, str, str]:
    try:
        out, err = job.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(job.pid, signal.SIGKILL)
        out, err = job.communicate()
        raise AssertionError(f"the job did not stop within {timeout} s: {err[-2000:]}") from None
    return job.returncode, out, err


@pytest.mark.parametrize(
    ("sig", "to_group", "status"), [(signal.SIGINT, True, 130), (signal.SIGTERM, False, 143)]
)
def test_a_signal_stops_every_process_and_removes_the_folder(
    tmp_path: Path, sig: signal.Signals, to_group: bool, status: int
) -> None:
    job = _job(tmp_path, "--epochs", "100000")
    ranks = _ranks(tmp_path, job)
    agent = _parent(ranks[0])
    assert _parent(ranks[1]) == agent
    assert _parent(agent) == job.pid
    # Every socket the agent and the ranks listen on is bound to 127.0.0.1 (0100007F), none to *.
    addresses = _listening([agent, *ranks])
    assert addresses
    assert set(addresses) == {"0100007F"}
    (os.killpg if to_group else os.kill)(job.pid, sig)
    returncode, out, err = _finish(job, STOP_S)
    assert returncode == status
    assert err.strip().splitlines()[-1] == (
        f"hai: error: interrupted by {sig.name}: every training process was stopped"
    )
    assert out == ""
    deadline = time.monotonic() + 5
    while any(_alive(p) for p in (agent, *ranks)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [p for p in (agent, *ranks) if _alive(p)] == []
    assert list(tmp_path.glob("hai-bnn-*")) == []  # torch may leave its own caches there


@pytest.mark.slow  # two starts of two ranks: about 35 s on a loaded 2-core machine
def test_a_killed_rank_is_retried_once_and_the_job_ends_with_its_status(tmp_path: Path) -> None:
    job = _job(tmp_path, "--epochs", "100000")
    first = _ranks(tmp_path, job)
    os.kill(first[1], signal.SIGKILL)
    second = _ranks(tmp_path, job, old=first)  # the retry
    os.kill(second[0], signal.SIGKILL)
    returncode, _out, err = _finish(job, 60)
    assert returncode == 128 + signal.SIGKILL
    assert err.count("starting them once more") == 1
    assert "the 2 training processes failed (exit status 137)" in err
    assert [p for p in (*first, *second) if _alive(p)] == []
    assert list(tmp_path.glob("hai-bnn-*")) == []  # torch may leave its own caches there


@pytest.mark.slow
def test_a_job_whose_rank_was_killed_at_start_succeeds_on_the_retry(tmp_path: Path) -> None:
    job = _job(tmp_path, "--epochs", "1", "--json")
    first = _ranks(tmp_path, job)  # the PID file comes before the data and the process group
    os.kill(first[0], signal.SIGKILL)
    returncode, out, err = _finish(job, START_S + 60)
    assert returncode == 0, err
    assert err.count("starting them once more") == 1
    assert '"world_size": 2' in out
    assert list(tmp_path.glob("hai-bnn-*")) == []  # torch may leave its own caches there


def test_a_frozen_rank_is_not_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    attempts: list[int] = []

    def frozen(cmd: list[str], env: dict[str, str], tmp: Path, attempt: int) -> tuple[int, str]:
        attempts.append(attempt)
        return 1, "--- local rank 0 ---\nRuntimeError: [gloo] Timed out waiting 3000ms for recv operation"

    monkeypatch.setattr(launch_module, "_run_job", frozen)
    with pytest.raises(HaiError, match=r"stopped answering.*--timeout of 3 s.*not retried") as info:
        launch(BNNConfig(data="synthetic", mode="sample", samples=2), 2, timeout_s=3.0)
    assert attempts == [0]
    assert info.value.exit_code == 1


def test_a_crash_keeps_its_exit_status(monkeypatch: pytest.MonkeyPatch) -> None:
    def crash(cmd: list[str], env: dict[str, str], tmp: Path, attempt: int) -> tuple[int, str]:
        return -int(signal.SIGSEGV), "--- local rank 1 ---\nSegmentation fault"

    monkeypatch.setattr(launch_module, "_run_job", crash)
    with pytest.raises(HaiError, match="exit status 139") as info:
        launch(BNNConfig(data="synthetic", mode="sample", samples=2), 2)
    assert info.value.exit_code == 139


def test_a_signal_between_attempts_stops_the_job(monkeypatch: pytest.MonkeyPatch) -> None:
    """SIGTERM after a crash, before the retry starts: no retry, JobInterrupted with status 143."""
    attempts: list[int] = []

    def crash_then_term(cmd: list[str], env: dict[str, str], tmp: Path, attempt: int) -> tuple[int, str]:
        attempts.append(attempt)
        os.kill(os.getpid(), signal.SIGTERM)  # the launcher's handler records it
        return 1, "--- local rank 0 ---\nboom"

    monkeypatch.setattr(launch_module, "_run_job", crash_then_term)
    previous = signal.getsignal(signal.SIGTERM)
    with pytest.raises(launch_module.JobInterrupted) as info:
        launch(BNNConfig(data="synthetic", mode="sample", samples=2), 2)
    assert attempts == [0]
    assert info.value.exit_code == 143
    assert signal.getsignal(signal.SIGTERM) is previous  # the handler is put back


@pytest.mark.slow  # one start of two ranks plus the timeout: about 30 s on a loaded 2-core machine
def test_a_frozen_rank_ends_the_job_without_a_retry(tmp_path: Path) -> None:
    job = _job(tmp_path, "--epochs", "100000", "--timeout", "3")
    ranks = _ranks(tmp_path, job)
    os.kill(ranks[1], signal.SIGSTOP)  # frozen: alive, never answers
    returncode, _out, err = _finish(job, 90)
    assert returncode == 128 + signal.SIGKILL  # torchrun kills the rank that cannot take SIGTERM
    assert "stopped answering" in err
    assert "--timeout of 3 s" in err
    assert "starting them once more" not in err
    assert [p for p in ranks if _alive(p)] == []
    assert list(tmp_path.glob("hai-bnn-*")) == []


@pytest.mark.slow  # one start of two ranks
def test_a_launcher_killed_with_sigkill_leaves_no_process_and_no_folder(tmp_path: Path) -> None:
    """The kernel tells the agent (PR_SET_PDEATHSIG); it stops the ranks and removes the folder."""
    job = _job(tmp_path, "--epochs", "100000")
    ranks = _ranks(tmp_path, job)
    agent = _parent(ranks[0])
    job.kill()
    job.communicate(timeout=30)
    deadline = time.monotonic() + STOP_S
    while (any(_alive(p) for p in (agent, *ranks)) or list(tmp_path.glob("hai-bnn-*"))) and (
        time.monotonic() < deadline
    ):
        time.sleep(0.05)
    assert [p for p in (agent, *ranks) if _alive(p)] == []
    assert list(tmp_path.glob("hai-bnn-*")) == []
