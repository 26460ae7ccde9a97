"""Checkpoints during BNN training and ``resume``: an interrupted run, resumed, is the uninterrupted run.

Training is resumable by construction (the batch order is keyed by (seed, epoch), the weight
noise by (seed, step, sample)), so a checkpoint holds the posterior, Adam's moments and the
position (epoch, batch, step, the epoch's partial loss sum). The invariant tested: the resumed
run's per-epoch losses and test metrics, and its final posterior, equal the uninterrupted run's
exactly (bit for bit, not to a tolerance).
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from hai.scale.data import synthetic_classification, synthetic_regression
from hai.scale.parallel import BNNConfig, train_bnn
from hai.scale.parallel.engine import SamplingParallel
from hai.scale.parallel.training import STATE_PREFIX, BNNResult, build_model, model_tensors
from hai.shared import CheckpointError, load_checkpoint
from hai.shared.cli import main

training = importlib.import_module("hai.scale.parallel.training")
DATA = synthetic_classification(300, n_features=6, n_classes=3, seed=2)  # 225 train rows: 4 steps/epoch
BASE: dict[str, Any] = {
    "hidden": (8,),
    "samples": 2,
    "batch_size": 50,
    "epochs": 3,
    "lr": 0.03,
    "eval_samples": 3,
}


def _rows(result: BNNResult) -> list[dict[str, Any]]:
    return [{k: v for k, v in h.to_dict().items() if k != "wall_s"} for h in result.history]


def _posterior(path: Path) -> dict[str, torch.Tensor]:
    return model_tensors(load_checkpoint(path).tensors)


def _same_tensors(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert sorted(a) == sorted(b)
    for name in a:
        assert torch.equal(a[name], b[name]), name


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> tuple[BNNResult, Path]:
    ckpt = tmp_path_factory.mktemp("full") / "full.safetensors"
    result = train_bnn(BNNConfig(**BASE, checkpoint=str(ckpt)), data=DATA)
    assert result.steps == 12
    return result, ckpt


@pytest.mark.parametrize("stop", [2, 4, 7, 11])  # inside epoch 1, at its end, inside epochs 2 and 3
def test_a_run_stopped_at_a_step_and_resumed_is_the_uninterrupted_run(
    tmp_path: Path, uninterrupted: tuple[BNNResult, Path], stop: int
) -> None:
    full, full_ckpt = uninterrupted
    ckpt = tmp_path / "run.safetensors"
    first = train_bnn(BNNConfig(**BASE, checkpoint=str(ckpt), max_steps=stop), data=DATA)
    assert first.steps == stop
    state = load_checkpoint(ckpt).extra["state"]
    assert state["step"] == stop
    resumed = train_bnn(BNNConfig(**BASE, checkpoint=str(ckpt), resume=True), data=DATA)
    assert resumed.steps == 12
    assert _rows(resumed) == _rows(full)
    assert resumed.loss == full.loss
    _same_tensors(_posterior(ckpt), _posterior(full_ckpt))


def test_a_run_killed_after_a_periodic_checkpoint_resumes_to_the_same_losses(
    tmp_path: Path, uninterrupted: tuple[BNNResult, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The process dies at step 7 (here: an exception inside the step); the checkpoint of step 6 stays."""
    full, full_ckpt = uninterrupted
    ckpt = tmp_path / "run.safetensors"
    real = SamplingParallel.forward_backward

    def dies_at_7(self: SamplingParallel, x: torch.Tensor, y: torch.Tensor, step: int) -> torch.Tensor:
        if step == 7:
            raise KeyboardInterrupt
        return real(self, x, y, step)

    monkeypatch.setattr(SamplingParallel, "forward_backward", dies_at_7)
    with pytest.raises(KeyboardInterrupt):
        train_bnn(BNNConfig(**BASE, checkpoint=str(ckpt), checkpoint_every=3), data=DATA)
    saved = load_checkpoint(ckpt)
    assert saved.extra["state"] == {
        "epoch": 2,
        "batch": 2,
        "step": 6,
        "n_losses": 2,
        "evaluated": 1,
        "complete": False,
    }
    assert f"{STATE_PREFIX}optimizer.0.exp_avg" in saved.tensors
    assert not [p.name for p in tmp_path.iterdir() if p.name != ckpt.name]  # no temporary file left
    monkeypatch.setattr(SamplingParallel, "forward_backward", real)
    resumed = train_bnn(BNNConfig(**BASE, checkpoint=str(ckpt), resume=True), data=DATA)
    assert _rows(resumed) == _rows(full)
    _same_tensors(_posterior(ckpt), _posterior(full_ckpt))


def test_regression_resumes_exactly_too(tmp_path: Path) -> None:
    data = synthetic_regression(128, seed=1)
    base = {**BASE, "data": "regression", "batch_size": 32}
    full = train_bnn(BNNConfig(**base), data=data)
    ckpt = tmp_path / "reg.safetensors"
    train_bnn(BNNConfig(**base, checkpoint=str(ckpt), max_steps=5), data=data)
    resumed = train_bnn(BNNConfig(**base, checkpoint=str(ckpt), resume=True), data=data)
    assert _rows(resumed) == _rows(full)
    assert resumed.std_in_data == full.std_in_data


def test_resuming_a_finished_run_trains_nothing_and_gives_its_result(
    tmp_path: Path, uninterrupted: tuple[BNNResult, Path]
) -> None:
    full, full_ckpt = uninterrupted
    ckpt = tmp_path / "copy.safetensors"
    ckpt.write_bytes(full_ckpt.read_bytes())
    again = train_bnn(BNNConfig(**BASE, checkpoint=str(ckpt), resume=True), data=DATA)
    assert again.steps == 12
    assert _rows(again) == _rows(full)
    assert again.reliability == full.reliability
    more = train_bnn(BNNConfig(**{**BASE, "epochs": 4}, checkpoint=str(ckpt), resume=True), data=DATA)
    assert more.steps == 16
    assert _rows(more)[:3] == _rows(full)


def test_resume_without_a_file_starts_afresh(tmp_path: Path, uninterrupted: tuple[BNNResult, Path]) -> None:
    full, _ = uninterrupted
    ckpt = tmp_path / "new.safetensors"
    result = train_bnn(BNNConfig(**BASE, checkpoint=str(ckpt), resume=True), data=DATA)
    assert _rows(result) == _rows(full)


def test_resume_refuses_other_settings_and_foreign_files(
    tmp_path: Path, uninterrupted: tuple[BNNResult, Path]
) -> None:
    _, full_ckpt = uninterrupted
    ckpt = tmp_path / "copy.safetensors"
    ckpt.write_bytes(full_ckpt.read_bytes())
    with pytest.raises(CheckpointError, match=r"other settings \(lr: 0.03 then, 0.01 now\)"):
        train_bnn(BNNConfig(**{**BASE, "lr": 0.01}, checkpoint=str(ckpt), resume=True), data=DATA)
    from hai.shared import save_checkpoint

    foreign = tmp_path / "foreign.safetensors"
    save_checkpoint(foreign, {"w": torch.zeros(2)}, config=BNNConfig(**BASE).to_dict())
    with pytest.raises(CheckpointError, match="no training state"):
        train_bnn(BNNConfig(**BASE, checkpoint=str(foreign), resume=True), data=DATA)
    assert (tmp_path / "foreign.safetensors").stat().st_size > 0


def test_the_checkpoints_model_tensors_load_into_the_model(uninterrupted: tuple[BNNResult, Path]) -> None:
    _, ckpt = uninterrupted
    model = build_model(BNNConfig(**BASE), DATA)
    missing = model.load_state_dict(_posterior(ckpt), strict=True)
    assert not missing.missing_keys
    assert not missing.unexpected_keys


def test_checkpoint_options_need_a_checkpoint_file(capsys: pytest.CaptureFixture[str]) -> None:
    for flags in (["--checkpoint-every", "3"], ["--resume"], ["--checkpoint-minutes", "1"]):
        assert main(["scale", "bnn-train", *flags]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1
        assert "need a checkpoint file" in err[0]


@pytest.mark.slow  # three starts of two ranks
@pytest.mark.distributed
def test_two_processes_resume_through_the_cli(tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "hai.shared", "scale", "bnn-train", "--nproc", "2", "--mode", "sample"]
    cmd += ["--data", "synthetic", "--hidden", "8", "--samples", "2", "--batch-size", "100"]
    cmd += ["--epochs", "2", "--eval-samples", "2", "--json"]
    env = dict(os.environ, OMP_NUM_THREADS="1")

    def run(*extra: str) -> dict[str, Any]:
        done = subprocess.run([*cmd, *extra], env=env, capture_output=True, text=True, timeout=240)
        assert done.returncode == 0, done.stderr
        data: dict[str, Any] = json.loads(done.stdout)
        return data

    full = run("--checkpoint", str(tmp_path / "full.safetensors"))
    ckpt = tmp_path / "run.safetensors"
    run("--checkpoint", str(ckpt), "--max-steps", "12")  # 9 steps per epoch: stops inside epoch 2
    resumed = run("--checkpoint", str(ckpt), "--resume")

    def rows(d: dict[str, Any]) -> list[dict[str, Any]]:
        return [{k: v for k, v in h.items() if k != "wall_s"} for h in d["history"]]

    assert rows(resumed) == rows(full)
    _same_tensors(_posterior(ckpt), _posterior(tmp_path / "full.safetensors"))


def test_config_fields_that_may_change_on_resume_exist() -> None:
    names = {f.name for f in dataclasses.fields(BNNConfig)}
    assert set(training.RESUMABLE_CHANGES) <= names
