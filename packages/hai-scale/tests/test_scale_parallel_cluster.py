"""``bnn-train --nnodes N --rdzv-endpoint HOST:PORT``: the torchrun rendezvous of a cluster job."""

from __future__ import annotations

import importlib
import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from hai.scale.parallel import BNNConfig, launch, train_bnn
from hai.shared import HaiError
from hai.shared.cli import main

launch_module = importlib.import_module("hai.scale.parallel.launch")
CONFIG = BNNConfig(data="synthetic", mode="sample", samples=2, hidden=(8,), epochs=1, eval_samples=2)


def _capture(monkeypatch: pytest.MonkeyPatch, status: int = 1) -> list[tuple[list[str], dict[str, str]]]:
    calls: list[tuple[list[str], dict[str, str]]] = []

    def fake(cmd: list[str], env: dict[str, str], tmp: Path, attempt: int) -> tuple[int, str]:
        calls.append((cmd, env))
        return status, "--- local rank 0 ---\nboom"

    monkeypatch.setattr(launch_module, "_run_job", fake)
    return calls


def test_a_cluster_job_uses_the_c10d_rendezvous_and_is_not_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    commands = _capture(monkeypatch)
    monkeypatch.setenv("SLURM_JOB_ID", "4242")
    monkeypatch.delenv("GLOO_SOCKET_IFNAME", raising=False)
    with pytest.raises(HaiError, match="exit status 1"):
        launch(CONFIG, 1, nnodes=2, rdzv_endpoint="node01:29500")
    assert len(commands) == 1  # one node cannot restart alone: no retry
    cmd, env = commands[0]
    assert "GLOO_SOCKET_IFNAME" not in env  # the ranks of other nodes are not on loopback
    assert cmd[:3] == [sys.executable, "-m", "hai.scale.parallel._torchrun"]
    assert cmd[3:7] == ["--nnodes=2", "--rdzv-backend=c10d", "--rdzv-endpoint=node01:29500", "--rdzv-id=4242"]
    assert "--standalone" not in cmd
    assert "--local-addr=127.0.0.1" not in cmd
    assert "--nproc-per-node=1" in cmd


def test_a_local_job_stays_on_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    commands = _capture(monkeypatch)
    with pytest.raises(HaiError):
        launch(CONFIG, 2, retries=0)
    cmd, env = commands[0]
    assert cmd[3:5] == ["--standalone", "--local-addr=127.0.0.1"]
    assert env.get("GLOO_SOCKET_IFNAME") in (None, "lo", "lo0")


@pytest.mark.parametrize(
    ("argv", "match"),
    [
        (["--nnodes", "2"], "need a rendezvous endpoint"),
        (["--nnodes", "2", "--rdzv-endpoint", "node01"], "must be HOST:PORT"),
        (["--nnodes", "2", "--rdzv-endpoint", "node01:99999"], "must be HOST:PORT"),
        (["--nnodes", "0", "--rdzv-endpoint", "node01:29500"], "--nnodes"),
    ],
)
def test_bad_cluster_options_are_one_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, argv: list[str], match: str
) -> None:
    _capture(monkeypatch)
    try:
        status = main(["scale", "bnn-train", "--mode", "sample", "--samples", "2", *argv])
    except SystemExit as exc:
        status = int(exc.code or 0)
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2
    assert len(err) == 1
    assert match in err[0]


@pytest.mark.slow  # two launchers, each starting torchrun and one rank
@pytest.mark.distributed
def test_two_nodes_on_one_machine_train_the_two_rank_model(tmp_path: Path) -> None:
    """Two "nodes" (launchers) meet at 127.0.0.1:PORT; rank 0's reports world size 2 and the loss of
    the one-process run (same samples, same batches: equal to rounding)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "hai.shared", "scale", "bnn-train", "--nproc", "1", "--nnodes", "2"]
    cmd += ["--rdzv-endpoint", f"127.0.0.1:{port}", "--rdzv-id", "test", "--mode", "sample", "--samples", "2"]
    cmd += ["--data", "synthetic", "--hidden", "8", "--epochs", "1", "--eval-samples", "2", "--json"]
    env = dict(os.environ, OMP_NUM_THREADS="1", TMPDIR=str(tmp_path))
    nodes = [
        subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outputs = []
    for node in nodes:
        out, err = node.communicate(timeout=240)
        assert node.returncode == 0, err
        outputs.append((out, err))
    reports = [json.loads(out) for out, _ in outputs if out.strip()]
    assert len(reports) == 1
    assert sum("reports the metrics on its node" in err for _, err in outputs) == 1
    report: dict[str, Any] = reports[0]
    assert report["world_size"] == 2
    local = train_bnn(
        BNNConfig(data="synthetic", mode="local", samples=2, hidden=(8,), epochs=1, eval_samples=2)
    )
    assert report["loss"] == pytest.approx(local.loss, rel=1e-5)
    assert list(tmp_path.glob("hai-bnn-*")) == []
