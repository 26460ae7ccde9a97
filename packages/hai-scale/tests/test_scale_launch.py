"""The torchrun launcher's failure handling: one retry after a crash, and each rank's last words."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest

from hai.scale.parallel import BNNConfig, launch
from hai.shared import HaiError

launch_module = importlib.import_module("hai.scale.parallel.launch")


def test_rank_logs_collects_each_ranks_stderr_tail(tmp_path: Path) -> None:
    for rank, text in ((0, "started\nfine"), (1, "\n".join(f"line {i}" for i in range(30)) + "\nboom")):
        folder = tmp_path / "run_x" / "attempt_0" / str(rank)
        folder.mkdir(parents=True)
        (folder / "stderr.log").write_text(text)
    logs = launch_module._rank_logs(tmp_path, lines=3)
    assert logs.splitlines() == [
        "--- local rank 0 ---",
        "started",
        "fine",
        "--- local rank 1 ---",
        "line 28",
        "line 29",
        "boom",
    ]


def test_a_crashed_job_is_retried_once_then_reported(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    attempts: list[int] = []

    def crash(cmd: list[str], env: dict[str, str], tmp: Path, attempt: int) -> tuple[int, str]:
        attempts.append(attempt)
        assert "--local-addr=127.0.0.1" in cmd
        return 1, "--- local rank 1 ---\nterminate called after throwing an instance of 'gloo::IoException'"

    monkeypatch.setattr(launch_module, "_run_job", crash)
    with pytest.raises(HaiError, match="gloo::IoException"):
        launch(BNNConfig(data="synthetic", mode="sample", samples=2), 2, retries=1)
    assert attempts == [0, 1]
    assert "starting them once more" in capsys.readouterr().err


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux names its loopback lo")
def test_loopback_interface_is_found_on_linux() -> None:
    assert launch_module._loopback_interface() == "lo"
