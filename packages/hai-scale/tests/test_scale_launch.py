"""The torchrun launcher's failure handling: one retry after a crash, and each rank's last words."""

from __future__ import annotations

import dataclasses
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


def test_the_launcher_passes_every_setting_on_to_its_processes() -> None:
    """A config sent through ``--nproc N`` arrives whole: argv → the ranks' parser → the same config."""
    import argparse

    from hai.scale.parallel.launch import _args_to_argv, add_bnn_arguments
    from hai.scale.parallel.training import config_from_args

    config = BNNConfig(
        data="regression",
        model="cnn",  # parsing only: no combination is validated here
        hidden=(16, 8),
        mode="hybrid",
        samples=6,
        loss="predictive",
        group_size=2,
        batch_size=48,
        epochs=3,
        lr=0.003,
        kl_weight=0.5,
        prior_std=0.7,
        posterior_std=0.02,
        estimator="flipout",
        augment=True,
        augment_per="step",
        eval_samples=5,
        seed=7,
        split_seed=4,
        dtype="float64",
        target_accuracy=0.9,
        max_steps=11,
        checkpoint="/tmp/x.safetensors",
        noise_std=0.25,
        threads=3,
        checkpoint_every=5,
        checkpoint_minutes=2.5,
        resume=True,
        target="y",
        task="regression",
    )
    parser = argparse.ArgumentParser()
    add_bnn_arguments(parser)
    parsed = config_from_args(parser.parse_args(_args_to_argv(config, 30.0)))
    assert parsed == config
    # Every field differs from its default above, so a field the launcher drops shows up.
    defaults = BNNConfig()
    fields = [f.name for f in dataclasses.fields(BNNConfig)]
    same = [name for name in fields if getattr(config, name) == getattr(defaults, name)]
    assert same == ["device"]


@pytest.mark.parametrize(
    ("data", "keys"), [("synthetic", ["accuracy", "ece"]), ("regression", ["rmse", "nll", "coverage"])]
)
def test_a_rank_without_result_file_prints_its_tasks_metrics(
    data: str, keys: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """``torchrun -m hai.scale.parallel`` (no --result-file): rank 0 prints one JSON line of metrics."""
    import json

    from hai.scale.parallel.launch import worker_main

    argv = [f"--data={data}", "--hidden=4", "--epochs=1", "--samples=2", "--batch-size=64"]
    argv.append("--eval-samples=2")
    assert worker_main(argv) == 0
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert list(printed) == ["mode", "world_size", "loss", *keys]
    assert printed["world_size"] == 1
