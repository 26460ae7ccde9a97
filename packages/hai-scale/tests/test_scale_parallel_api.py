"""train_bnn's result holds the trained network; the data split has its own seed."""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

import pytest
import torch

from hai.scale.bnn.layers import bayesian_layers
from hai.scale.data import load_dataset
from hai.scale.parallel import BNNConfig, train_bnn
from hai.scale.parallel.training import model_tensors
from hai.shared import load_checkpoint

training = importlib.import_module("hai.scale.parallel.training")
SMALL: dict[str, Any] = {"hidden": (8,), "samples": 2, "batch_size": 100, "epochs": 1, "eval_samples": 2}


def test_the_result_holds_the_trained_network(tmp_path: Path) -> None:
    ckpt = tmp_path / "m.safetensors"
    result = train_bnn(BNNConfig(data="synthetic", checkpoint=str(ckpt), **SMALL))
    assert isinstance(result.model, torch.nn.Module)
    assert bayesian_layers(result.model)
    saved = model_tensors(load_checkpoint(ckpt).tensors)
    state = result.model.state_dict()
    assert sorted(saved) == sorted(state)
    assert all(torch.equal(saved[k], state[k]) for k in saved)
    assert json.loads(json.dumps(result.to_dict()))["model"] == "mlp"  # the results stay data: no network


@pytest.mark.parametrize(("seed", "split_seed"), [(0, 0), (5, 0), (5, 3)])
def test_the_data_set_and_its_split_follow_split_seed_not_seed(
    monkeypatch: pytest.MonkeyPatch, seed: int, split_seed: int
) -> None:
    seen: list[int] = []
    real = training.load_dataset

    def recording(name: str, *, seed: int = 0, dtype: torch.dtype = torch.float32) -> Any:
        seen.append(seed)
        return real(name, seed=seed, dtype=dtype)

    monkeypatch.setattr(training, "load_dataset", recording)
    result = train_bnn(BNNConfig(data="synthetic", seed=seed, split_seed=split_seed, **SMALL))
    assert seen == [split_seed]
    test_rows = load_dataset("synthetic", seed=split_seed).x_test.shape[0]
    assert sum(result.reliability["count"]) == test_rows  # scored on that split's test rows


def test_a_seed_sweep_scores_on_the_same_test_rows() -> None:
    a = load_dataset("synthetic", seed=BNNConfig(seed=0).split_seed)
    b = load_dataset("synthetic", seed=BNNConfig(seed=9).split_seed)
    assert torch.equal(a.x_test, b.x_test)
