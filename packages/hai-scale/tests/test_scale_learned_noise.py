"""Learned homoscedastic noise for BNN regression (issue 23.4): ``--noise learned`` / ``noise_std="learned"``.

log σ is one trainable parameter of the model (``noise_log_std``): the ELBO's Gaussian likelihood
uses it, DDP averages its gradient, checkpoints hold it, and the reported NLL and coverage use its
final value. A fixed σ trains exactly as before.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from hai.scale import BNNConfig, ELBOLoss, PredictiveLoss, synthetic_regression, train_bnn
from hai.scale.bnn.losses import LogStd, log_likelihood, nll_sum
from hai.scale.parallel import build_loss, build_model
from hai.shared import InputError, load_checkpoint
from hai.shared.cli import main


def test_the_likelihood_with_a_learned_std_is_the_fixed_one_and_its_gradient_is_closed_form() -> None:
    gen = torch.Generator().manual_seed(0)
    outputs = torch.randn(3, 5, dtype=torch.float64, generator=gen)
    target = torch.randn(5, dtype=torch.float64, generator=gen)
    sigma = 0.37
    log_std = torch.tensor(math.log(sigma), dtype=torch.float64, requires_grad=True)
    learned = nll_sum(outputs, target, "gaussian", LogStd(log_std))
    fixed = nll_sum(outputs, target, "gaussian", sigma)
    assert float(learned.detach()) == pytest.approx(float(fixed), abs=1e-12)
    normal = torch.distributions.Normal(outputs, sigma)
    assert float(learned.detach()) == pytest.approx(float(-normal.log_prob(target).sum()), abs=1e-12)
    torch.testing.assert_close(
        log_likelihood(outputs, target, "gaussian", LogStd(log_std)).detach(),
        log_likelihood(outputs, target, "gaussian", sigma),
    )
    learned.backward()
    z = (outputs - target) / sigma
    assert log_std.grad is not None
    # d/d log σ of Σ [z²/2 + log σ] = Σ (1 − z²)
    assert float(log_std.grad) == pytest.approx(float((1 - z * z).sum()), abs=1e-10)


def test_the_model_holds_log_sigma_and_the_loss_uses_it() -> None:
    data = synthetic_regression(64)
    config = BNNConfig(hidden=(8,), noise_std="learned")
    model = build_model(config, data)
    param = dict(model.named_parameters())["noise_log_std"]
    # it starts at the training targets' std (all of y taken as noise), not at the data's 0.1
    assert float(param.detach().exp()) == pytest.approx(float(data.y_train.std(unbiased=False)), rel=1e-6)
    for cls in (ELBOLoss, PredictiveLoss):
        loss = build_loss(
            BNNConfig(hidden=(8,), noise_std="learned", loss=cls.__name__[:-4].lower()), data, model
        )
        assert isinstance(loss, cls)
        assert loss.log_noise_std is param
        assert loss.noise_std == pytest.approx(float(param.detach().exp()))
    with pytest.raises(InputError, match="needs the model"):
        build_loss(config, data)
    fixed = build_model(BNNConfig(hidden=(8,)), data)  # a fixed σ adds no parameter
    assert "noise_log_std" not in dict(fixed.named_parameters())
    assert build_loss(BNNConfig(hidden=(8,)), data, fixed).log_noise_std is None


def test_the_learned_sigma_ends_near_the_true_noise(tmp_path: Path) -> None:
    data = synthetic_regression(1024, noise_std=0.1, test_noise=True)
    start = float(data.y_train.std(unbiased=False))
    assert start > 0.5  # far from the truth
    ckpt = tmp_path / "learned.safetensors"
    config = BNNConfig(
        hidden=(32,),
        samples=4,
        batch_size=32,
        epochs=40,
        noise_std="learned",
        eval_samples=16,
        checkpoint=str(ckpt),
    )
    result = train_bnn(config, data=data)
    out = result.to_dict()
    assert out["noise"] == "learned"
    assert out["noise_std"] == pytest.approx(0.1, rel=0.3)
    # the checkpoint holds log σ, and the model loads it back
    saved = load_checkpoint(ckpt).tensors["noise_log_std"]
    assert float(saved.exp()) == pytest.approx(out["noise_std"], rel=1e-6)
    # the reported predictive includes the learned noise: its std is at least σ everywhere
    assert out["std_in_data"] >= out["noise_std"]
    # its 90 % intervals cover the noisy test targets about as often as they should
    assert 0.75 <= out["coverage"] <= 1.0


def test_fixed_sigma_training_is_unchanged() -> None:
    """A fixed σ: the given one overrides the data's, and a run with σ given equals the run whose
    data carries that σ, loss for loss (no learned parameter, no other random draws); and the
    numbers are those of the code before learned noise existed (commit af929a6, this machine)."""

    def run(data_sigma: float, noise_std: float | None) -> dict[str, Any]:
        config = BNNConfig(
            hidden=(8,), samples=2, batch_size=32, epochs=2, eval_samples=4, noise_std=noise_std
        )
        return train_bnn(config, data=synthetic_regression(64, noise_std=data_sigma)).to_dict()

    a, b = run(0.2, None), run(0.3, 0.2)
    assert a["noise"] == b["noise"] == "fixed"
    assert a["noise_std"] == b["noise_std"] == 0.2
    c = run(0.2, 0.2)
    assert [h["train_loss"] for h in c["history"]] == [h["train_loss"] for h in a["history"]]
    assert c["nll"] == a["nll"]
    for loss, (train_loss, nll, rmse, coverage) in {
        "elbo": (13.959135055541992, 42.52164897522774, 0.9912755840917359, 0.12871287128712872),
        "predictive": (13.480067253112793, 41.70017412484871, 0.9963903720563013, 0.12871287128712872),
    }.items():
        config = BNNConfig(data="regression", hidden=(16,), samples=3, batch_size=32, epochs=3, loss=loss)
        config.eval_samples = 8
        old = train_bnn(config).to_dict()
        assert old["loss"] == pytest.approx(train_loss, rel=1e-6)
        assert old["nll"] == pytest.approx(nll, rel=1e-6)
        assert old["rmse"] == pytest.approx(rmse, rel=1e-6)
        assert old["coverage"] == pytest.approx(coverage, abs=1e-12)


def fails(capsys: pytest.CaptureFixture[str], argv: list[str], match: str) -> None:
    try:
        status = main(["scale", "bnn-train", *argv])
    except SystemExit as exc:
        status = int(exc.code or 0)
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2, err
    assert len(err) == 1, err
    assert match in err[0], err[0]


def test_cli_noise_options(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    fails(capsys, ["--data", "regression", "--noise", "learned", "--noise-std", "0.1"], "give one of the two")
    fails(capsys, ["--data", "synthetic", "--noise", "learned"], "regression only")
    fails(capsys, ["--data", "regression", "--noise", "sometimes"], "--noise")
    reg = tmp_path / "reg.csv"
    reg.write_text("x,y\n" + "".join(f"{i / 10},{math.sin(i / 10) + 0.5 * i}\n" for i in range(40)))
    fails(capsys, ["--data", str(reg), "--target", "y", "--noise", "fixed"], "no known noise std")
    with pytest.raises(InputError, match="learned"):
        BNNConfig(data="regression", noise_std="sometimes").validate(1)
    argv = [
        "--data",
        "regression",
        "--noise",
        "learned",
        "--hidden",
        "8",
        "--epochs",
        "2",
        "--eval-samples",
        "4",
    ]
    assert main(["scale", "bnn-train", *argv]) == 0
    assert "learned noise std" in capsys.readouterr().out


@pytest.mark.slow  # starts two ranks
@pytest.mark.distributed
@pytest.mark.timeout(300)
def test_two_processes_learn_the_same_sigma_as_one() -> None:
    cmd = [
        sys.executable,
        "-m",
        "hai.shared",
        "scale",
        "bnn-train",
        "--data",
        "regression",
        "--noise",
        "learned",
    ]
    cmd += ["--mode", "sample", "--samples", "2", "--hidden", "8", "--batch-size", "32", "--epochs", "3"]
    cmd += ["--eval-samples", "4", "--json"]
    env = dict(os.environ, OMP_NUM_THREADS="1")

    def run(nproc: str) -> dict[str, Any]:
        done = subprocess.run([*cmd, "--nproc", nproc], env=env, capture_output=True, text=True, timeout=240)
        assert done.returncode == 0, done.stderr
        data: dict[str, Any] = json.loads(done.stdout)
        return data

    one, two = run("1"), run("2")
    assert two["world_size"] == 2
    assert two["noise_std"] == pytest.approx(one["noise_std"], rel=1e-5)
    assert two["noise_std"] < 0.99 * float(synthetic_regression().y_train.std(unbiased=False))  # it moved
    for a, b in zip(one["history"], two["history"], strict=True):
        assert b["train_loss"] == pytest.approx(a["train_loss"], rel=1e-5)
        assert b["test_nll"] == pytest.approx(a["test_nll"], rel=1e-4)


def test_a_learned_noise_run_resumes_to_the_uninterrupted_run(tmp_path: Path) -> None:
    def config(name: str, **extra: Any) -> BNNConfig:
        return BNNConfig(
            data="regression",
            hidden=(8,),
            samples=2,
            batch_size=32,
            epochs=3,
            eval_samples=4,
            noise_std="learned",
            checkpoint=str(tmp_path / name),
            **extra,
        )

    full = train_bnn(config("full.safetensors"))
    train_bnn(config("part.safetensors", max_steps=11))  # 8 steps per epoch: stops inside epoch 2
    resumed = train_bnn(config("part.safetensors", resume=True))
    assert [h.train_loss for h in resumed.history] == [h.train_loss for h in full.history]
    assert resumed.noise_std == full.noise_std
    assert full.model is not None
    assert resumed.model is not None
    mine = dict(resumed.model.named_parameters())["noise_log_std"]
    assert torch.equal(mine, dict(full.model.named_parameters())["noise_log_std"])
