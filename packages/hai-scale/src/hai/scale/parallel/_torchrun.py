"""``python -m hai.scale.parallel._torchrun [torchrun options]``: torchrun whose stores listen on loopback.

torchrun's agent hosts its TCP stores (the c10d rendezvous and the workers' store) with
``torch.distributed.TCPStore(host, port, is_master=True)``, and torch's store server binds
every interface whatever ``host`` says (seen as ``*:PORT`` in ``ss -ltn`` with torch 2.13,
also with ``--rdzv-endpoint 127.0.0.1:PORT`` and ``--master-addr 127.0.0.1``). For a job on
one machine this wrapper makes every store the agent hosts on a loopback host listen on a
socket bound to 127.0.0.1 (``master_listen_fd``, which only the non-libuv server accepts),
then runs torchrun. A store on any other host (a multi-node endpoint) is left as torchrun
makes it. Also, with ``TORCH_ELASTIC_SHUTDOWN_TIMEOUT`` set, the agent waits at most that long between
SIGTERM and SIGKILL when it stops ranks after a failure (torch 2.13 waits a fixed 30 s there).

Two more things for :func:`hai.scale.parallel.launch`, which starts it:

- With ``HAI_TORCHRUN_REPORT=FILE`` set, a failed job writes each failed rank's exit code
  (negative: the signal that killed it), PID and message to ``FILE`` as JSON, and the wrapper
  exits with the root cause's status (a rank killed by a signal first, else the earliest
  failure; a signal ``s`` becomes ``128 + s`` as in a shell). A signal to the agent itself
  (SIGTERM, SIGINT: torchrun stops its workers first) exits ``128 + s``.
- With ``HAI_PARENT_PID=PID`` set (Linux), the agent asks the kernel for SIGTERM when its
  parent dies, so a launcher killed with ``kill -9`` does not leave the ranks training. The
  ranks find the agent's PID in ``HAI_AGENT_PID``; the agent then removes the launcher's job
  folder ``HAI_JOB_DIR`` (a ``hai-bnn-*`` folder), which the launcher can no longer do.
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import sys
from collections.abc import Sequence
from typing import Any

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
PR_SET_PDEATHSIG = 1


def _patch() -> None:
    import torch.distributed as dist
    from torch.distributed.elastic.rendezvous import c10d_rendezvous_backend

    base = dist.TCPStore

    class LoopbackTCPStore(base):  # type: ignore[misc, valid-type]
        """A TCPStore whose server, on a loopback host, listens on 127.0.0.1 only."""

        def __init__(self, host_name: str, port: int, *args: Any, **kwargs: Any) -> None:
            names = ("world_size", "is_master")
            for name, value in zip(names, args[: len(names)], strict=False):
                kwargs.setdefault(name, value)
            args = args[len(names) :]
            if kwargs.get("is_master") and host_name in LOOPBACK_HOSTS and "master_listen_fd" not in kwargs:
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                try:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                    sock.bind(("127.0.0.1", int(port)))
                    sock.listen(512)
                except OSError:  # the port is taken (a multi-tenant store already serves it)
                    sock.close()
                else:
                    port = sock.getsockname()[1]
                    # The store's server owns the descriptor from now on: a Python socket object
                    # closing it at exit would pull it from under the server's poll loop, which
                    # then aborts the process ("Unexpected poll revent ... 32").
                    kwargs["master_listen_fd"] = sock.detach()
                    kwargs["use_libuv"] = False
            super().__init__(host_name, port, *args, **kwargs)

    dist.TCPStore = LoopbackTCPStore  # type: ignore[misc]
    c10d_rendezvous_backend.TCPStore = LoopbackTCPStore  # type: ignore[misc]

    # torch 2.13 stops the other ranks after a failure with a fixed 30 s between SIGTERM and
    # SIGKILL (PContext.close's default, whatever --shutdown-timeout says), so a frozen (stopped)
    # rank costs 30 s more. Cap every close at TORCH_ELASTIC_SHUTDOWN_TIMEOUT seconds.
    from torch.distributed.elastic.multiprocessing import api as mp_api

    cap = os.environ.get("TORCH_ELASTIC_SHUTDOWN_TIMEOUT", "")
    if cap.isdigit():
        original = mp_api.PContext.close

        def close(self: Any, death_sig: Any = None, timeout: int = 30) -> None:
            original(self, death_sig, min(int(timeout), int(cap)))

        mp_api.PContext.close = close  # type: ignore[method-assign]


def die_with_parent(parent: int | None, sig: int = signal.SIGTERM) -> None:
    """On Linux, have the kernel send ``sig`` to this process when its parent ``parent`` dies."""
    if parent is None or not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the parent died before the request took effect
        os.kill(os.getpid(), sig)


def exit_status(exitcode: int) -> int:
    """A process's exit status as a shell reports it: a signal ``s`` (``-s``) becomes ``128 + s``.

    >>> exit_status(1), exit_status(-9), exit_status(0)
    (1, 137, 0)
    """
    return 128 - exitcode if exitcode < 0 else exitcode


def _report(failures: dict[int, Any]) -> int:
    rows: list[dict[str, Any]] = [
        {
            "rank": int(rank),
            "local_rank": int(f.local_rank),
            "pid": int(f.pid),
            "exitcode": int(f.exitcode),
            "message": str(f.message),
            "timestamp": int(f.timestamp),
        }
        for rank, f in failures.items()
    ]
    # The root cause first: the agent stops the other ranks with SIGTERM once one has failed,
    # and a rank killed by another signal is why its peers then failed.
    rows.sort(key=lambda r: (r["exitcode"] == -signal.SIGTERM, r["exitcode"] >= 0, r["timestamp"], r["rank"]))
    path = os.environ.get("HAI_TORCHRUN_REPORT")
    if path:
        from hai.shared import write_json

        write_json(path, {"failures": rows})
    status = exit_status(rows[0]["exitcode"]) if rows else 1
    return status or 1


def main(argv: Sequence[str] | None = None) -> int:
    """Run torchrun with ``argv`` (default: this process's arguments); return the exit status."""
    parent = os.environ.get("HAI_PARENT_PID")
    die_with_parent(int(parent) if parent and parent.isdigit() else None)
    os.environ["HAI_AGENT_PID"] = str(os.getpid())  # the ranks' parent, for their own die_with_parent
    _patch()
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import parse_args, run

    sys.argv[0] = "torchrun"
    args = parse_args(list(sys.argv[1:] if argv is None else argv))
    try:
        run(args)
    except ChildFailedError as exc:
        print(f"torchrun: {exc.name} failed", file=sys.stderr)
        return _report(exc.failures)
    except SignalException as exc:
        _orphaned_cleanup(parent)
        return 128 + int(exc.sigval)
    return 0


def _orphaned_cleanup(parent: str | None) -> None:
    """After the launcher died (``kill -9``), remove its job folder ``HAI_JOB_DIR``: nobody else will.

    The agent has stopped its ranks by now (torchrun stops them before it re-raises the signal).
    """
    folder = os.environ.get("HAI_JOB_DIR", "")
    if not parent or str(os.getppid()) == parent or not os.path.basename(folder).startswith("hai-bnn-"):
        return
    import shutil

    shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
