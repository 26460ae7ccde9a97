"""Bayesian regression through train_bnn, the engine and `hai scale bnn-train --data regression`."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

import pytest
import torch

from hai.scale import (
    BNNConfig,
    ELBOLoss,
    gaussian_predictive,
    load_classification,
    load_dataset,
    regression_metrics,
    synthetic_classification,
    synthetic_regression,
    to_bayesian,
    train_bnn,
)
from hai.scale.data import RegressionData
from hai.scale.models import mlp
from hai.scale.parallel import SamplingParallel
from hai.shared import InputError, torch_threads
from hai.shared.cli import main


def test_regression_metrics_match_a_reference_computation() -> None:
    gen = torch.Generator().manual_seed(0)
    mean = torch.randn(500, generator=gen, dtype=torch.float64)
    var = torch.rand(500, generator=gen, dtype=torch.float64) + 0.05
    target = mean + torch.randn(500, generator=gen, dtype=torch.float64) * var.sqrt()
    m = regression_metrics(mean, var, target, level=0.9)
    normal = torch.distributions.Normal(mean, var.sqrt())
    assert m["nll"] == pytest.approx(float(-normal.log_prob(target).mean()), abs=1e-12)
    assert m["rmse"] == pytest.approx(math.sqrt(float(((target - mean) ** 2).mean())), abs=1e-12)
    lo, hi = normal.icdf(torch.tensor(0.05)), normal.icdf(torch.tensor(0.95))
    assert m["coverage"] == pytest.approx(float(((target >= lo) & (target <= hi)).double().mean()), abs=1e-12)
    # the targets are drawn from the predictive itself: coverage near 90 % (binomial sd 1.3 %)
    assert 0.85 < m["coverage"] < 0.95
    assert m["std"] == pytest.approx(float(var.sqrt().mean()), abs=1e-12)
    with pytest.raises(InputError, match="positive"):
        regression_metrics(mean, torch.zeros_like(var), target)
    with pytest.raises(InputError, match="level"):
        regression_metrics(mean, var, target, level=1.0)


def test_gaussian_predictive_has_the_moments_of_the_mixture() -> None:
    means = torch.randn(7, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    p = gaussian_predictive(means, noise_std=0.3)
    assert p.variance is not None
    # law of total variance for an equal-weight mixture of N(m_i, 0.3²)
    torch.testing.assert_close(p.mean, means.sum(0) / 7)
    torch.testing.assert_close(p.variance, (means**2).sum(0) / 7 - (means.sum(0) / 7) ** 2 + 0.09)


def test_predict_outputs_is_the_engine_evaluation() -> None:
    torch.manual_seed(0)
    net = to_bayesian(mlp(4, 3, (6,)).double(), posterior_std=0.2)
    engine = SamplingParallel(net, ELBOLoss(10), samples=2, batch_size=4, seed=5)
    x = torch.randn(9, 4, dtype=torch.float64)
    outputs = engine.predict_outputs(x, samples=5, n_outputs=3, key=2)
    assert outputs.shape == (5, 9, 3)
    assert not torch.allclose(outputs[0], outputs[1])  # different weight samples
    # the same weight samples as the classification evaluation: its mean softmax
    probs = engine.predict_proba(x, samples=5, n_classes=3, key=2)
    torch.testing.assert_close(torch.softmax(outputs, -1).mean(0), probs, atol=1e-12, rtol=0)


def test_synthetic_regression_test_noise_changes_only_the_test_targets() -> None:
    clean = synthetic_regression(64, noise_std=0.1, seed=2, dtype=torch.float64)
    noisy = synthetic_regression(64, noise_std=0.1, seed=2, dtype=torch.float64, test_noise=True)
    assert torch.equal(clean.x_train, noisy.x_train)
    assert torch.equal(clean.y_train, noisy.y_train)
    torch.testing.assert_close(clean.y_test, torch.sin(3 * clean.x_test[:, 0]))
    residual = noisy.y_test - clean.y_test
    assert 0.07 < float(residual.std()) < 0.13  # 101 draws of N(0, 0.1²)
    assert clean.gap == (-0.3, 0.3)
    assert not bool(((clean.x_train > -0.3) & (clean.x_train < 0.3)).any())
    assert isinstance(load_dataset("regression"), RegressionData)
    with pytest.raises(InputError, match="regression data set"):
        load_classification("regression")


def test_local_regression_learns_and_is_less_sure_in_the_gap() -> None:
    data = synthetic_regression(256, noise_std=0.1, seed=0, dtype=torch.float64, test_noise=True)
    # two hidden layers: a mean-field BNN with one hidden layer cannot be less certain between
    # two data clusters than at their edges (Foong et al., "In-Between" Uncertainty in BNNs, 2019)
    config = BNNConfig(
        hidden=(32, 32),
        samples=4,
        batch_size=64,
        epochs=100,
        lr=0.01,
        posterior_std=0.02,
        eval_samples=32,
        dtype="float64",
    )
    with torch_threads(1):  # a tiny network: extra threads only wait on a busy machine
        result = train_bnn(config, data=data)
    out = result.to_dict()
    assert result.task == "regression"
    assert out["data"] == "regression"
    assert result.steps == 100 * (256 // 64)
    baseline = math.sqrt(float(((data.y_test - data.y_train.mean()) ** 2).mean()))  # predict the mean
    assert out["rmse"] < 0.5 * baseline
    assert out["rmse"] == result.rmse == result.history[-1].test_rmse
    assert result.history[-1].train_loss < result.history[0].train_loss
    assert 0.7 <= out["coverage"] <= 0.99  # nominal 0.9; the test grid includes extrapolation
    assert out["noise_std"] == 0.1
    assert out["std_in_data"] >= 0.1  # predictive std = √(sample variance + noise²)
    assert out["std_in_gap"] > out["std_in_data"]
    assert out["nll"] == result.history[-1].test_nll
    assert "accuracy" not in out
    assert "reliability" not in out
    assert set(out["history"][-1]) == {
        "epoch",
        "step",
        "train_loss",
        "test_nll",
        "wall_s",
        "test_rmse",
        "test_coverage",
    }
    assert json.dumps(out)


def test_classification_output_keeps_its_keys() -> None:
    data = synthetic_classification(200, n_features=4, n_classes=3, seed=0)
    out = train_bnn(BNNConfig(hidden=(8,), batch_size=50, epochs=1, eval_samples=2), data=data).to_dict()
    assert list(out) == [
        "mode",
        "world_size",
        "samples",
        "data",
        "model",
        "n_parameters",
        "epochs",
        "steps",
        "loss",
        "accuracy",
        "nll",
        "ece",
        "entropy",
        "step_time_s",
        "per_rank",
        "workload",
        "history",
        "reliability",
        "config",
    ]
    assert list(out["history"][0]) == [
        "epoch",
        "step",
        "train_loss",
        "test_accuracy",
        "test_nll",
        "test_ece",
        "test_entropy",
        "wall_s",
    ]


@pytest.mark.distributed
@pytest.mark.timeout(200)
def test_two_sample_parallel_ranks_match_one_process(tmp_path: Path, dist_worker: Any) -> None:
    worker = dist_worker
    reference = worker.run_regression_cases()
    ranks = worker.spawn(2, tmp_path, "regression")
    for name, *_ in worker.REGRESSION_CASES:
        ref = reference[name]
        for rank in ranks:
            got = rank[name]
            assert abs(got["loss"] - ref["loss"]) < 1e-6
            assert set(got["grads"]) == set(ref["grads"])
            for param, g in ref["grads"].items():
                assert g.dtype == torch.float64
                torch.testing.assert_close(got["grads"][param], g, atol=1e-6, rtol=0)
            torch.testing.assert_close(got["outputs"], ref["outputs"], atol=1e-12, rtol=0)
    assert [r["regression-sample"]["samples"] for r in ranks] == [[0, 1], [2, 3]]
    assert ranks[0]["regression-data"]["samples"] == [0, 1, 2, 3]
    ref = reference["train"]
    assert ref["world_size"] == 1
    for rank in ranks:
        got = rank["train"]
        assert got["world_size"] == 2
        for key in ("loss", "nll", "rmse", "coverage", "std_in_data", "std_in_gap"):
            assert got[key] == pytest.approx(ref[key], abs=1e-9), key
        assert [h["train_loss"] for h in got["history"]] == pytest.approx(
            [h["train_loss"] for h in ref["history"]], abs=1e-9
        )


def run_cli(capsys: pytest.CaptureFixture[str], argv: list[str]) -> dict[str, Any]:
    assert main(argv) == 0
    data: dict[str, Any] = json.loads(capsys.readouterr().out)
    return data


BASE = ["scale", "bnn-train", "--data", "regression", "--hidden", "8", "--epochs", "2", "--eval-samples", "4"]


def test_cli_regression_json_and_table(capsys: pytest.CaptureFixture[str]) -> None:
    out = run_cli(capsys, [*BASE, "--seed", "3", "--json"])
    config = BNNConfig(data="regression", hidden=(8,), epochs=2, eval_samples=4, seed=3)
    api = train_bnn(config).to_dict()  # the same run through the API
    for key in ("loss", "nll", "rmse", "coverage", "std_in_data", "std_in_gap", "noise_std", "steps"):
        assert out[key] == api[key], key
    assert out["data"] == "regression"
    assert out["noise_std"] == 0.1
    assert out["steps"] == 2 * (256 // 64)
    assert "accuracy" not in out
    assert len(out["history"]) == 2
    wider = run_cli(capsys, [*BASE, "--seed", "3", "--noise-std", "0.3", "--json"])
    assert wider["noise_std"] == 0.3
    assert wider["config"]["noise_std"] == 0.3
    assert wider["std_in_data"] >= 0.3
    assert main([*BASE, "--seed", "3"]) == 0
    table = capsys.readouterr().out
    assert "test RMSE" in table
    assert "90% cover" in table
    assert "inside its gap" in table


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--model", "cnn"], "the CNN needs image data"),
        (["--augment"], "augmentations"),
        (["--target-accuracy", "0.9"], "target_accuracy applies to classification"),
        (["--noise-std", "0"], "noise_std must be positive"),
    ],
)
def test_cli_regression_bad_input(capsys: pytest.CaptureFixture[str], extra: list[str], message: str) -> None:
    assert main([*BASE, *extra]) == 2
    assert message in capsys.readouterr().err


def test_api_regression_bad_input() -> None:
    data = synthetic_regression(64)
    small = BNNConfig(hidden=(4,), batch_size=32, epochs=1, eval_samples=2)
    with pytest.raises(InputError, match="the CNN needs image data"):
        train_bnn(dataclasses.replace(small, model="cnn"), data=data)
    with pytest.raises(InputError, match="augmentations"):
        train_bnn(dataclasses.replace(small, augment=True), data=data)
    with pytest.raises(InputError, match="target_accuracy"):
        train_bnn(dataclasses.replace(small, target_accuracy=0.5), data=data)
    with pytest.raises(InputError, match="noise_std applies to regression only"):
        train_bnn(dataclasses.replace(small, noise_std=0.2), data=synthetic_classification(100, seed=0))
    flat = dataclasses.replace(data, y_train=data.y_train[:, None])
    with pytest.raises(InputError, match=r"y \(N,\)"):
        train_bnn(small, data=flat)
