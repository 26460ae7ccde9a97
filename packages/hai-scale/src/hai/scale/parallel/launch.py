"""Starting BNN training on several processes: ``torchrun`` (env://) or ``hai scale bnn-train --nproc N``.

Under ``torchrun`` each process calls :func:`init_distributed` (gloo on CPU, nccl on CUDA,
with a timeout so a failed peer cannot hang the job) and :func:`train_bnn`. ``bnn-train --nproc
N`` validates the settings first, then starts ``python -m torch.distributed.run --standalone
--nproc-per-node N -m hai.scale.parallel ...`` and reads rank 0's result file. A rank that hits
a user error writes it to the error file, destroys its process group and exits with status 2.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from datetime import timedelta
from pathlib import Path
from types import FrameType
from typing import Any

import torch
import torch.distributed as dist

from hai.scale.augment import AUGMENT_PER
from hai.scale.bnn.layers import ESTIMATORS
from hai.scale.data import DATASETS, TASKS, is_data_file
from hai.scale.parallel._torchrun import die_with_parent, exit_status
from hai.scale.parallel.training import LEARNED, LOSSES, BNNConfig, config_from_args, train_bnn
from hai.scale.parallel.workload import MODES
from hai.shared import HaiError, InputError, resolve_device, write_json
from hai.shared.checks import (
    arg_finite_float,
    arg_nonnegative_float,
    arg_nonnegative_int,
    arg_positive_float,
    arg_positive_int,
    positive_float,
    positive_int,
)

MAX_THREADS = 4 * (os.cpu_count() or 1)  # more torch threads than that only slow training down


def hidden_widths(text: str) -> list[int]:
    """argparse type of ``--hidden``: comma-separated positive widths, at least one (64 or 64,64)."""
    try:
        widths = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers such as 64,64, got {text!r}"
        ) from None
    if not widths or min(widths) < 1:
        raise argparse.ArgumentTypeError(
            f"the MLP needs at least one hidden layer of positive width, such as 64 or 64,64; got {text!r}"
        )
    return widths


def data_name(text: str) -> str:
    """argparse type of ``--data``: a named data set or a ``.csv``/``.npz`` file name."""
    if text in DATASETS or is_data_file(text):
        return text
    raise argparse.ArgumentTypeError(
        f"expected one of {', '.join(DATASETS)} or a file ending in .csv or .npz, got {text!r}"
    )


def _target_accuracy(text: str) -> float:
    value = arg_finite_float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be an accuracy between 0 and 1, got {text!r}")
    return value


def add_bnn_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``hai scale bnn-train`` (also understood by ``python -m hai.scale.parallel``)."""
    p.add_argument("--mode", default="local", choices=MODES, help="parallel mode (default local)")
    p.add_argument(
        "--loss",
        default="elbo",
        choices=LOSSES,
        help="elbo (mean log-likelihood over the samples) or predictive (log of the mean predictive)",
    )
    p.add_argument(
        "--samples", "-S", type=arg_positive_int(), default=4, help="weight samples per step (default 4)"
    )
    p.add_argument(
        "--group-size", type=arg_positive_int(), default=None, help="hybrid: ranks per sample group"
    )
    p.add_argument(
        "--data",
        default="digits",
        type=data_name,
        metavar="{" + ",".join(DATASETS) + "} or FILE",
        help="data set (default digits), or a data file: FILE.csv (with --target) or FILE.npz (arrays x, y)",
    )
    p.add_argument(
        "--target", default=None, metavar="COLUMN", help="--data FILE.csv: the target column's name"
    )
    p.add_argument(
        "--task",
        default=None,
        choices=TASKS,
        help="--data FILE: classification or regression (default: from the target's values)",
    )
    p.add_argument("--model", default="mlp", choices=("mlp", "cnn"), help="network (default mlp)")
    p.add_argument("--hidden", type=hidden_widths, default=[64], help="MLP hidden widths, e.g. 64,64")
    p.add_argument("--batch-size", type=arg_positive_int(), default=64, help="global batch size (default 64)")
    p.add_argument(
        "--epochs", type=arg_positive_int(), default=10, help="passes over the training data (default 10)"
    )
    p.add_argument("--lr", type=arg_positive_float, default=1e-2, help="Adam learning rate (default 0.01)")
    p.add_argument(
        "--kl-weight", type=arg_nonnegative_float, default=1.0, help="weight β of the KL term (default 1)"
    )
    p.add_argument(
        "--prior-std", type=arg_positive_float, default=1.0, help="std of the Gaussian prior (default 1)"
    )
    p.add_argument(
        "--posterior-std", type=arg_positive_float, default=1e-2, help="initial posterior std (default 0.01)"
    )
    p.add_argument("--estimator", default="reparam", choices=ESTIMATORS, help="gradient estimator")
    p.add_argument(
        "--noise-std",
        type=float,
        default=None,
        help="regression: the Gaussian likelihood's fixed noise std (default: the data's, 0.1)",
    )
    p.add_argument(
        "--noise",
        default=None,
        choices=("fixed", LEARNED),
        help="regression: a fixed noise std, or one learned with the weights (default: fixed for the "
        "named data, learned for a data file)",
    )
    p.add_argument("--augment", action="store_true", help="random shifts, rotations and noise")
    p.add_argument(
        "--augment-per",
        default="sample",
        choices=AUGMENT_PER,
        help="one augmentation per weight sample or step",
    )
    p.add_argument(
        "--eval-samples",
        type=arg_positive_int(),
        default=16,
        help="weight samples for evaluation (default 16)",
    )
    p.add_argument(
        "--target-accuracy",
        type=_target_accuracy,
        default=None,
        help="stop once the test accuracy reaches it",
    )
    p.add_argument("--max-steps", type=arg_positive_int(), default=None, help="stop after this many steps")
    p.add_argument("--checkpoint", default=None, help="save the trained posterior here (safetensors)")
    p.add_argument(
        "--checkpoint-every",
        type=arg_positive_int(),
        default=None,
        metavar="N",
        help="also save the training state to --checkpoint every N steps (atomically)",
    )
    p.add_argument(
        "--checkpoint-minutes",
        type=arg_positive_float,
        default=None,
        metavar="M",
        help="also save the training state to --checkpoint every M minutes",
    )
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue from --checkpoint if it exists (same settings; the losses are those of one run)",
    )
    p.add_argument(
        "--seed", type=int, default=0, help="seed of the initialisation, order and noise (default 0)"
    )
    p.add_argument(
        "--split-seed",
        type=int,
        default=0,
        help="seed of the data set and its train/test split (default 0: the same test rows for every --seed)",
    )
    p.add_argument(
        "--device", default="cpu", help="cpu, cuda or auto (default cpu); ranks use cuda:LOCAL_RANK"
    )
    p.add_argument("--dtype", default="float32", choices=("float32", "float64"), help="default float32")
    p.add_argument(
        "--threads",
        type=arg_nonnegative_int(maximum=MAX_THREADS),
        default=1,
        help="torch CPU threads per process (default 1; 0: torch's setting)",
    )
    p.add_argument(
        "--timeout",
        type=arg_positive_float,
        default=120.0,
        help="process-group timeout in seconds (default 120)",
    )


def init_distributed(device: str = "cpu", timeout_s: float = 120.0) -> bool:
    """Join the job ``torchrun`` started (env://) if there is one; return whether a group was made."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or dist.is_initialized():
        return False
    backend = "nccl" if resolve_device(device).type == "cuda" else "gloo"
    if backend == "gloo":
        torch.set_num_threads(1)
    dist.init_process_group(backend, init_method="env://", timeout=timedelta(seconds=timeout_s))
    return True


def worker_main(argv: Sequence[str] | None = None) -> int:
    """One rank of a job: ``torchrun --nproc-per-node N -m hai.scale.parallel [bnn-train options]``."""
    parser = argparse.ArgumentParser(prog="python -m hai.scale.parallel", description=__doc__)
    add_bnn_arguments(parser)
    parser.add_argument("--result-file", default=None, help="rank 0 writes the metrics here as JSON")
    args = parser.parse_args(argv)
    error_file = None if args.result_file is None else Path(str(args.result_file) + ".error")
    if args.result_file is not None:  # started by launch(): die with the agent, leave a PID for it
        agent = os.environ.get("HAI_AGENT_PID", "")
        die_with_parent(int(agent) if agent.isdigit() else None, signal.SIGKILL)
        rank = int(os.environ.get("RANK", "0"))
        Path(args.result_file).with_name(f"rank{rank}.pid").write_text(str(os.getpid()))
    started = False
    try:
        config = config_from_args(args)
        # Validate before joining, with the world size torchrun announces: every rank fails alike.
        config.validate(int(os.environ.get("WORLD_SIZE", "1")))
        started = init_distributed(args.device, args.timeout)
        result = train_bnn(config)
        if result.rank == 0:
            data = result.to_dict()
            if args.result_file is not None:
                write_json(args.result_file, data)
            else:
                task = ("rmse", "nll", "coverage") if "rmse" in data else ("accuracy", "ece")
                print(json.dumps({k: data[k] for k in ("mode", "world_size", "loss", *task)}))
        return 0
    except HaiError as exc:
        rank = int(os.environ.get("RANK", "0"))
        print(f"error (rank {rank}): {exc}", file=sys.stderr)
        if error_file is not None and rank == 0:
            write_json(error_file, {"error": str(exc), "type": type(exc).__name__})
        return exc.exit_code
    finally:
        if started and dist.is_initialized():
            dist.destroy_process_group()


def _args_to_argv(config: BNNConfig, timeout_s: float) -> list[str]:
    c = config
    argv = [
        f"--mode={c.mode}",
        f"--samples={c.samples}",
        f"--loss={c.loss}",
        f"--data={Path(c.data).resolve() if is_data_file(c.data) else c.data}",
        f"--model={c.model}",
        "--hidden=" + ",".join(str(h) for h in c.hidden),
        f"--batch-size={c.batch_size}",
        f"--epochs={c.epochs}",
        f"--lr={c.lr!r}",
        f"--kl-weight={c.kl_weight!r}",
        f"--prior-std={c.prior_std!r}",
        f"--posterior-std={c.posterior_std!r}",
        f"--estimator={c.estimator}",
        f"--augment-per={c.augment_per}",
        f"--eval-samples={c.eval_samples}",
        f"--seed={c.seed}",
        f"--split-seed={c.split_seed}",
        f"--device={c.device}",
        f"--dtype={c.dtype}",
        f"--timeout={timeout_s!r}",
    ]
    if c.group_size is not None:
        argv.append(f"--group-size={c.group_size}")
    if c.augment:
        argv.append("--augment")
    if c.target_accuracy is not None:
        argv.append(f"--target-accuracy={c.target_accuracy!r}")
    if c.max_steps is not None:
        argv.append(f"--max-steps={c.max_steps}")
    if c.noise_std == LEARNED:
        argv.append(f"--noise={LEARNED}")
    elif c.noise_std is not None:
        argv.append(f"--noise-std={c.noise_std!r}")
    if c.target is not None:
        argv.append(f"--target={c.target}")
    if c.task is not None:
        argv.append(f"--task={c.task}")
    argv.append(f"--threads={c.threads or 0}")
    if c.checkpoint is not None:
        argv.append(f"--checkpoint={Path(c.checkpoint).resolve()}")
    if c.checkpoint_every is not None:
        argv.append(f"--checkpoint-every={c.checkpoint_every}")
    if c.checkpoint_minutes is not None:
        argv.append(f"--checkpoint-minutes={c.checkpoint_minutes!r}")
    if c.resume:
        argv.append("--resume")
    return argv


def _loopback_interface() -> str | None:
    """The name of this host's loopback interface (``lo`` on Linux, ``lo0`` on macOS), if found."""
    try:
        names = [name for _, name in socket.if_nameindex()]
    except OSError:
        return None
    return next((n for n in ("lo", "lo0") if n in names), None)


def _rank_logs(log_dir: Path, lines: int = 12) -> str:
    """The last lines each rank wrote to its stderr (torchrun ``--redirects``), for an error message."""
    parts = []
    for path in sorted(log_dir.glob("**/stderr.log")):
        text = path.read_text(errors="replace").strip()
        if text:
            tail = "\n".join(text.splitlines()[-lines:])
            parts.append(f"--- local rank {path.parent.name} ---\n{tail}")
    return "\n".join(parts)


class JobInterrupted(HaiError):
    """The job was stopped by SIGINT or SIGTERM; its exit status is ``128 + signal``, as in a shell."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"interrupted by {signal.Signals(signum).name}: every training process was stopped")
        self.signum = signum
        self.exit_code = 128 + signum


class JobFailed(HaiError):
    """The training processes crashed; the exit status is the failed rank's (``128 + s`` for a signal)."""

    def __init__(self, message: str, exit_code: int, *, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.exit_code = exit_code if exit_code > 0 else 1


GRACE_S = 10.0  # how long stopped processes get to exit before SIGKILL
SHUTDOWN_S = (
    5  # torchrun's agent: SIGTERM to SIGKILL of its ranks (its default, 30 s, prolongs a frozen rank)
)


class _Supervisor:
    """Owns one torchrun agent (in its own session) and its ranks; turns signals into a clean stop."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.signum: int | None = None
        self.proc: subprocess.Popen[bytes] | None = None

    def on_signal(self, signum: int, frame: FrameType | None) -> None:
        if self.signum is None:
            self.signum = signum
        self.stop()

    def stop(self) -> None:
        """Ask the agent to stop its ranks (torchrun sends them SIGTERM, then SIGKILL)."""
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGTERM)

    def wait(self) -> int:
        """Wait for the agent; after a signal, give it :data:`GRACE_S` before killing everything."""
        assert self.proc is not None
        deadline: float | None = None
        while True:
            try:
                return self.proc.wait(timeout=0.1)
            except subprocess.TimeoutExpired:
                pass
            if self.signum is not None:
                deadline = deadline or time.monotonic() + GRACE_S
                if time.monotonic() > deadline:
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.killpg(self.proc.pid, signal.SIGKILL)
                    self.kill_ranks()

    def rank_pids(self) -> list[int]:
        pids = []
        for path in self.tmp.glob("rank*.pid"):
            with contextlib.suppress(OSError, ValueError):
                pids.append(int(path.read_text()))
        return pids

    def _ours(self, pid: int) -> bool:
        """Whether ``pid`` is still one of this job's ranks (not a finished one's reused PID)."""
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            if sys.platform.startswith("linux"):
                return False
            try:
                os.kill(pid, 0)
            except OSError:
                return False
            return True
        return state != "Z" and str(self.tmp).encode() in cmdline

    def kill_ranks(self) -> None:
        """SIGKILL every rank still alive (a rank is its own session leader: its group goes too)."""
        pids = [pid for pid in self.rank_pids() if self._ours(pid)]
        for pid in pids:
            try:
                os.killpg(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + GRACE_S
        while any(self._ours(pid) for pid in pids) and time.monotonic() < deadline:
            time.sleep(0.05)


@contextlib.contextmanager
def _signals_to(supervisor: _Supervisor) -> Iterator[None]:
    """Route SIGINT and SIGTERM to ``supervisor`` (main thread only; elsewhere they stay as they are)."""
    previous: dict[int, Any] = {}
    try:
        for sig in (int(signal.SIGINT), int(signal.SIGTERM)):
            previous[sig] = signal.signal(sig, supervisor.on_signal)
    except ValueError:  # not the main thread
        pass
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _run_job(cmd: list[str], env: dict[str, str], tmp: Path, attempt: int) -> tuple[int, str]:
    """Run one attempt of the job; return torchrun's exit status and the ranks' last words.

    The agent runs in its own session, so only this process decides when it stops: SIGINT or
    SIGTERM here stops the agent, which stops its ranks; any rank still alive after
    :data:`GRACE_S` is killed, and :class:`JobInterrupted` is raised once all are gone.
    """
    log_dir = tmp / f"logs-{attempt}"
    report = tmp / f"failures-{attempt}.json"
    full = [*cmd[:3], f"--log-dir={log_dir}", "--redirects=3", *cmd[3:]]
    env = dict(env, HAI_PARENT_PID=str(os.getpid()), HAI_TORCHRUN_REPORT=str(report), HAI_JOB_DIR=str(tmp))
    for old in tmp.glob("rank*.pid"):
        old.unlink()
    supervisor = _Supervisor(tmp)
    with _signals_to(supervisor), open(tmp / f"torchrun-{attempt}.log", "wb") as out:
        try:
            if supervisor.signum is None:
                supervisor.proc = subprocess.Popen(
                    full, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
                )
                if supervisor.signum is not None:  # a signal between the check and the start
                    supervisor.stop()
                returncode = supervisor.wait()
        finally:
            if supervisor.proc is not None and supervisor.proc.poll() is None:
                supervisor.signum = supervisor.signum or signal.SIGTERM
                supervisor.stop()
                supervisor.wait()
            supervisor.kill_ranks()
    if supervisor.signum is not None:
        raise JobInterrupted(supervisor.signum)
    text = (tmp / f"torchrun-{attempt}.log").read_text(errors="replace").strip()
    output = "\n".join(text.splitlines()[-15:])
    ranks = _rank_logs(log_dir)
    return returncode, ranks or output


_TIMEOUT_WORDS = ("timed out", "timeout", "deadline exceeded")


def _looks_frozen(logs: str) -> bool:
    """Whether a failed job's logs say a rank waited out the process-group timeout."""
    low = logs.lower()
    return any(word in low for word in _TIMEOUT_WORDS)


def _endpoint(text: str) -> str:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise InputError(
            f"the rendezvous endpoint must be HOST:PORT, got {text!r}",
            hint="e.g. --rdzv-endpoint node01:29500",
        )
    return text


def launch(
    config: BNNConfig,
    nproc: int,
    *,
    timeout_s: float = 120.0,
    quiet: bool = True,
    retries: int = 1,
    nnodes: int = 1,
    rdzv_endpoint: str | None = None,
    rdzv_id: str | None = None,
) -> dict[str, Any]:
    """Run :func:`train_bnn` on ``nproc`` local processes through torchrun; return rank 0's metrics.

    The settings are validated here first, so bad input fails without starting anything. All
    processes talk over the loopback interface only, and torchrun's stores listen on 127.0.0.1
    (:mod:`hai.scale.parallel._torchrun`). The launcher owns its processes: SIGINT or SIGTERM
    stops every rank within seconds, removes the temporary folder and raises
    :class:`JobInterrupted` (exit status 130 or 143). A job whose processes crash (a non-zero
    exit or a signal that did not come from us) is started again up to ``retries`` times, with
    a warning on stderr; a job in which a rank stopped answering (the others waited
    ``timeout_s`` for it) is not retried, since a retry would likely cost another timeout. The
    final :class:`JobFailed` carries the failed rank's exit status and the last lines each rank
    wrote.

    On a cluster, run the same call on each of ``nnodes`` machines with the same
    ``rdzv_endpoint`` (``HOST:PORT`` of one of them) and ``rdzv_id`` (default ``$SLURM_JOB_ID``,
    else ``hai-bnn``): torchrun's c10d rendezvous then joins the ``nnodes × nproc`` ranks over
    the network (not loopback), and a crash is not retried (one node cannot restart alone).
    The machine that holds rank 0 returns its metrics; the others return
    ``{"rank0_here": False, "world_size": ...}``.
    """
    nproc = positive_int("nproc", nproc, maximum=1024)
    nnodes = positive_int("nnodes", nnodes, maximum=100_000)
    timeout_s = positive_float("timeout", timeout_s)
    cluster = nnodes > 1 or rdzv_endpoint is not None
    if nnodes > 1 and rdzv_endpoint is None:
        raise InputError(
            f"{nnodes} nodes need a rendezvous endpoint",
            hint="add --rdzv-endpoint HOST:PORT (one of the nodes)",
        )
    if cluster:
        assert rdzv_endpoint is not None
        rendezvous = [
            f"--nnodes={nnodes}",
            "--rdzv-backend=c10d",
            f"--rdzv-endpoint={_endpoint(rdzv_endpoint)}",
            f"--rdzv-id={rdzv_id or os.environ.get('SLURM_JOB_ID') or 'hai-bnn'}",
        ]
        retries = 0
    else:
        rendezvous = ["--standalone", "--local-addr=127.0.0.1"]
    config.validate(nproc * nnodes, local_size=nproc)
    with tempfile.TemporaryDirectory(prefix="hai-bnn-") as tmp_name:
        tmp = Path(tmp_name)
        result_file = tmp / "result.json"
        cmd = [
            sys.executable,
            "-m",
            "hai.scale.parallel._torchrun",
            *rendezvous,
            f"--nproc-per-node={nproc}",
            "-m",
            "hai.scale.parallel",
            *_args_to_argv(config, timeout_s),
            f"--result-file={result_file}",
        ]
        env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
        env.setdefault("TORCH_ELASTIC_SHUTDOWN_TIMEOUT", str(SHUTDOWN_S))
        loopback = _loopback_interface()
        if loopback is not None and config.device == "cpu" and not cluster:
            env.setdefault("GLOO_SOCKET_IFNAME", loopback)
        if quiet:
            env["HAI_QUIET"] = "1"
        between = _Supervisor(tmp)  # a signal between attempts (no process running) stops the job too
        with _signals_to(between):
            return _attempts(cmd, env, tmp, between, nproc, nnodes, cluster, timeout_s, retries)


def _attempts(
    cmd: list[str],
    env: dict[str, str],
    tmp: Path,
    between: _Supervisor,
    nproc: int,
    nnodes: int,
    cluster: bool,
    timeout_s: float,
    retries: int,
) -> dict[str, Any]:
    result_file = tmp / "result.json"
    error_file = Path(str(result_file) + ".error")
    returncode, logs = 1, ""
    for attempt in range(retries + 1):
        if between.signum is not None:
            raise JobInterrupted(between.signum)
        started = time.monotonic()
        returncode, logs = _run_job(cmd, env, tmp, attempt)
        if error_file.exists():
            raise HaiError(json.loads(error_file.read_text())["error"])
        returncode = exit_status(returncode)
        if returncode == 0 and result_file.exists():
            result: dict[str, Any] = json.loads(result_file.read_text())
            return result
        if returncode == 0 and cluster:  # rank 0 ran on another node
            return {"rank0_here": False, "world_size": nproc * nnodes}
        if _looks_frozen(logs):
            raise JobFailed(
                f"a training process stopped answering: the others waited the --timeout of "
                f"{timeout_s:g} s for it and gave up (exit status {returncode}); not retried, "
                f"since a retry would likely cost another {timeout_s:g} s:\n{logs}",
                returncode,
                hint="run with --nproc 1 to see the error in one process",
            )
        if attempt < retries:
            print(
                f"warning: the {nproc} training processes crashed after "
                f"{time.monotonic() - started:.1f} s (exit status {returncode}); "
                "starting them once more",
                file=sys.stderr,
            )
    if between.signum is not None:
        raise JobInterrupted(between.signum)
    raise JobFailed(
        f"the {nproc} training processes failed (exit status {returncode}):\n{logs}",
        returncode,
        hint="run with --nproc 1 to see the error in one process",
    )
