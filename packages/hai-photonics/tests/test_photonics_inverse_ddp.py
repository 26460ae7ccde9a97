"""Data parallelism: ``hai photonics train`` in 2 gloo processes (as ``torchrun`` starts them)
gives the weights that one process gives on the same global batches — for OptoLlama (masks and
times drawn for the whole batch, the loss normalised by the whole batch's count) and OptoGPT."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from hai.photonics.dataset import generate_dataset
from hai.photonics.inverse.checkpoints import build_model, load_model

pytestmark = [pytest.mark.distributed, pytest.mark.slow]  # 4 processes start torch

TIMEOUT_S = 120  # a hung rendezvous or collective fails the test instead of hanging it


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _train_argv(model: str, data: Path, out: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "hai.shared",
        "photonics",
        "train",
        "--model",
        model,
        "--data",
        str(data),
        "--out",
        str(out),
        "--size",
        "tiny",
        "--steps",
        "3",
        "--batch-size",
        "8",
        "--eval-every",
        "3",
        "--val-fraction",
        "0.1",
        "--threads",
        "1",
        "--device",
        "cpu",
        "--json",
    ]


def _run(argv: list[str], world: int) -> None:
    port = _free_port()
    procs = []
    for rank in range(world):
        env = {
            **os.environ,
            "OMP_NUM_THREADS": "1",
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": str(port),
            "RANK": str(rank),
            "LOCAL_RANK": str(rank),
            "WORLD_SIZE": str(world),
        }
        if world == 1:
            for key in ("MASTER_ADDR", "MASTER_PORT", "RANK", "LOCAL_RANK", "WORLD_SIZE"):
                env.pop(key)
        procs.append(subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE))
    try:
        for proc in procs:
            _out, err = proc.communicate(timeout=TIMEOUT_S)
            assert proc.returncode == 0, err.decode()[-2000:]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


@pytest.mark.parametrize("model", ["optollama", "optogpt"])
def test_two_processes_equal_one(model: str, tmp_path: Path) -> None:
    info = generate_dataset(tmp_path / "d", 48, seed=5, shard_size=48, progress_bar=False)
    _run(_train_argv(model, info.path, tmp_path / "one"), world=1)
    _run(_train_argv(model, info.path, tmp_path / "two"), world=2)
    one = load_model(tmp_path / "one" / "last.safetensors", kind=model)
    two = load_model(tmp_path / "two" / "last.safetensors", kind=model)
    assert one.training["step"] == two.training["step"] == 3
    a, b = one.model.state_dict(), two.model.state_dict()
    for name in a:
        assert torch.allclose(a[name], b[name], atol=1e-5, rtol=1e-4), name
    torch.manual_seed(0)  # the training loop builds its model under the seed (0)
    init = build_model(model, one.model.config).state_dict()
    # training moved the weights, by about Adam's step bound Σ lr_s (warm-up: 1e-3 · (1 + 2 + 3) / 100)
    moved = max(float((a[n] - init[n]).abs().max()) for n in a)
    assert 1e-5 < moved < 1.5 * 6e-5
    assert one.training["history"][-1]["val_loss"] == pytest.approx(two.training["history"][-1]["val_loss"])
