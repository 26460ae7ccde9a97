"""BNN training loop, data hooks, augmentations and the `hai scale bnn-train` command."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
import torch
from torch.utils.data import TensorDataset

from hai.scale import (
    Augmentation,
    BNNConfig,
    augmentation_generator,
    from_datasets,
    synthetic_classification,
    synthetic_regression,
    train_bnn,
)
from hai.scale.bnn import ELBOLoss, predict, to_bayesian
from hai.scale.models import mlp
from hai.scale.parallel import SamplingParallel
from hai.shared import InputError, load_checkpoint
from hai.shared.cli import main

SMALL = synthetic_classification(400, n_features=8, n_classes=3, seed=0)


def test_local_training_learns_and_saves_a_checkpoint(tmp_path: Path) -> None:
    ckpt = tmp_path / "bnn.safetensors"
    config = BNNConfig(
        hidden=(16,), samples=2, batch_size=50, epochs=4, lr=0.03, eval_samples=4, checkpoint=str(ckpt)
    )
    result = train_bnn(config, data=SMALL)
    losses = [h.train_loss for h in result.history]
    assert losses[-1] < losses[0]
    assert result.accuracy > 0.6
    assert result.steps == 4 * (300 // 50)
    assert 0.0 <= result.history[-1].test_ece <= 1.0
    assert len(result.per_rank) == 1
    assert result.per_rank[0]["max_rss_mib"] > 0
    assert result.per_rank[0]["total_energy_j"] is None or result.per_rank[0]["total_energy_j"] > 0
    assert sum(result.reliability["count"]) == SMALL.x_test.shape[0]
    saved = load_checkpoint(ckpt)
    assert "0.weight_mu" in saved.tensors
    assert saved.config["samples"] == 2
    data = result.to_dict()
    assert data["loss"] == losses[-1]
    assert json.dumps(data)


def test_target_accuracy_and_max_steps_stop_early() -> None:
    result = train_bnn(
        BNNConfig(hidden=(16,), batch_size=50, epochs=5, max_steps=3, eval_samples=2), data=SMALL
    )
    assert result.steps == 3
    assert len(result.history) == 1
    result = train_bnn(
        BNNConfig(hidden=(16,), batch_size=50, epochs=20, lr=0.03, eval_samples=2, target_accuracy=0.5),
        data=SMALL,
    )
    assert result.epochs_to(0.5) == len(result.history) < 20


def test_regression_bnn_is_less_certain_away_from_the_data() -> None:
    data = synthetic_regression(128, noise_std=0.1, seed=0, dtype=torch.float64)
    torch.manual_seed(0)
    net = to_bayesian(mlp(1, 1, (32,)).double(), posterior_std=0.05)
    engine = SamplingParallel(
        net, ELBOLoss(128, likelihood="gaussian", noise_std=0.1), samples=4, batch_size=128, seed=0
    )
    opt = torch.optim.Adam(net.parameters(), lr=0.02)
    first = last = 0.0
    for step in range(250):
        opt.zero_grad()
        last = float(engine.forward_backward(data.x_train, data.y_train, step))
        first = first or last
        opt.step()
    assert last < first
    p = predict(net, data.x_test, samples=32, likelihood="gaussian", noise_std=0.1)
    assert p.variance is not None
    inside = (data.x_test.abs() > 0.4) & (data.x_test.abs() < 0.9)
    outside = data.x_test.abs() > 1.3
    assert p.variance[outside[:, 0]].mean() > p.variance[inside[:, 0]].mean()
    assert float((p.mean[inside[:, 0]] - data.y_test[inside[:, 0]]).abs().mean()) < 0.2


def test_from_datasets_hook_trains() -> None:
    train = TensorDataset(SMALL.x_train, SMALL.y_train)
    test = TensorDataset(SMALL.x_test, SMALL.y_test)
    data = from_datasets(train, test, name="mine")
    assert data.n_classes == 3
    assert torch.equal(data.x_train, SMALL.x_train)
    result = train_bnn(BNNConfig(hidden=(8,), batch_size=100, epochs=1, eval_samples=2), data=data)
    assert result.steps == 3
    with pytest.raises(InputError, match="pair"):
        from_datasets([torch.zeros(2)], test)


def test_augmentation_is_keyed_and_row_sliceable() -> None:
    aug = Augmentation(image_shape=(8, 8), max_shift=1.5, max_rotation=20, noise_std=0.1)
    x = torch.randn(6, 64, dtype=torch.float64)
    a = aug(x, augmentation_generator(0, 3, 1))
    assert torch.equal(a, aug(x, augmentation_generator(0, 3, 1)))
    assert not torch.allclose(a, aug(x, augmentation_generator(0, 3, 2)))
    part = aug(x[3:], augmentation_generator(0, 3, 1), rows=slice(3, 6), batch_size=6)
    torch.testing.assert_close(part, a[3:])
    still = Augmentation(image_shape=(8, 8), max_shift=0, max_rotation=0, noise_std=0)
    torch.testing.assert_close(still(x, None), x)
    shifted = Augmentation(image_shape=(4, 4), max_shift=1, max_rotation=0, noise_std=0)
    img = torch.zeros(1, 16, dtype=torch.float64)
    img[0, 5] = 1.0
    out = shifted(img, torch.Generator().manual_seed(0))
    assert out.sum() == pytest.approx(1.0, abs=1e-9)  # an inner pixel moves, nothing is lost


@pytest.mark.parametrize("threads", [2, None])
def test_training_runs_on_the_threads_asked_for_and_restores_the_setting(
    threads: int | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    import hai.scale.parallel.training as training

    seen: list[int] = []
    real = training.SamplingParallel

    def spy(*args: Any, **kwargs: Any) -> Any:
        seen.append(torch.get_num_threads())
        return real(*args, **kwargs)

    monkeypatch.setattr(training, "SamplingParallel", spy)
    before = torch.get_num_threads()
    train_bnn(BNNConfig(hidden=(4,), batch_size=50, max_steps=1, eval_samples=2, threads=threads), data=SMALL)
    assert seen == [before if threads is None else threads]
    assert torch.get_num_threads() == before


def test_bad_configs() -> None:
    for threads in (0, 1.5, True):
        with pytest.raises(InputError, match="threads must be a positive integer"):
            BNNConfig(threads=threads).validate(1)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="mode 'local' runs in one process"):
        BNNConfig(mode="local").validate(2)
    with pytest.raises(InputError, match="unknown parallel mode"):
        BNNConfig(mode="pipeline").validate(1)
    with pytest.raises(InputError, match="larger than the training set"):
        train_bnn(BNNConfig(batch_size=1000, epochs=1), data=SMALL)
    with pytest.raises(InputError, match="no Bayesian layer"):
        SamplingParallel(mlp(2, 2), ELBOLoss(10), samples=1, batch_size=2)


def run_cli(capsys: pytest.CaptureFixture[str], argv: list[str]) -> dict[str, Any]:
    assert main(argv) == 0
    data: dict[str, Any] = json.loads(capsys.readouterr().out)
    return data


BASE = ["scale", "bnn-train", "--data", "synthetic", "--hidden", "16", "--epochs", "1", "--eval-samples", "4"]


def test_cli_local_json_and_table(capsys: pytest.CaptureFixture[str]) -> None:
    data = run_cli(capsys, [*BASE, "--samples", "2", "--seed", "3", "--json"])
    assert data["mode"] == "local"
    assert data["world_size"] == 1
    assert data["samples"] == 2
    assert 0.0 < data["loss"] < 50
    assert 0.0 <= data["accuracy"] <= 1.0
    assert main([*BASE, "--samples", "2", "--estimator", "flipout"]) == 0
    out = capsys.readouterr().out
    assert "mode local on 1 process(es)" in out
    assert "ECE" in out


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--nproc", "2", "--mode", "sample", "--samples", "3"], "not divisible"),
        (["--nproc", "4", "--mode", "sample", "--samples", "2"], "more ranks (4) than weight samples (2)"),
        (["--nproc", "2", "--mode", "local"], "mode 'local' runs in one process"),
    ],
)
def test_cli_bad_input_fails_before_starting_processes(
    capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    assert main([*BASE, *extra]) == 2
    assert message in capsys.readouterr().err


@pytest.mark.distributed
@pytest.mark.slow
@pytest.mark.timeout(240)
@pytest.mark.parametrize("loss", ["elbo", "predictive"])
def test_cli_two_processes_match_one(capsys: pytest.CaptureFixture[str], loss: str) -> None:
    argv = [
        *BASE,
        "--samples",
        "2",
        "--seed",
        "1",
        "--dtype",
        "float64",
        "--augment",
        "--json",
        "--loss",
        loss,
    ]
    two = run_cli(capsys, [*argv, "--nproc", "2", "--mode", "sample"])
    assert two["config"]["loss"] == loss
    assert two["world_size"] == 2
    assert len(two["per_rank"]) == 2
    assert two["workload"]["sample_stop"] - two["workload"]["sample_start"] == 1
    one = run_cli(capsys, argv)
    assert two["loss"] == pytest.approx(one["loss"], abs=1e-9)
    assert two["accuracy"] == one["accuracy"]
    assert two["nll"] == pytest.approx(one["nll"], abs=1e-9)


def test_predictive_loss_trains_and_is_below_the_elbo(capsys: pytest.CaptureFixture[str]) -> None:
    config = BNNConfig(
        hidden=(16,), samples=4, batch_size=50, epochs=4, lr=0.03, eval_samples=4, loss="predictive"
    )
    pred = train_bnn(config, data=SMALL)
    assert pred.accuracy > 0.6
    assert pred.history[-1].train_loss < pred.history[0].train_loss
    # one step from the same model with the same weight samples: Jensen orders the two losses
    first = dataclasses.replace(config, epochs=1, max_steps=1, posterior_std=0.5)
    first_pred = train_bnn(first, data=SMALL).loss
    first_elbo = train_bnn(dataclasses.replace(first, loss="elbo"), data=SMALL).loss
    assert first_pred < first_elbo - 1e-4
    data = run_cli(capsys, [*BASE, "--samples", "2", "--loss", "predictive", "--json"])
    assert data["config"]["loss"] == "predictive"
