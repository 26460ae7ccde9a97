import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.numpy import save_file

from hai.shared import (
    CheckpointError,
    __version__,
    load_checkpoint,
    load_results,
    save_checkpoint,
    save_results,
)
from hai.shared import files as files_mod


def test_torch_round_trip_keeps_tensors_and_metadata(tmp_path: Path):
    model = torch.nn.Linear(3, 2).double()
    path = save_checkpoint(tmp_path / "m.safetensors", model.state_dict(), config={"lr": 0.1}, seed=7)
    ckpt = load_checkpoint(path)
    assert set(ckpt.tensors) == {"weight", "bias"}
    assert torch.equal(ckpt.tensors["weight"], model.weight.detach())
    assert ckpt.tensors["weight"].dtype == torch.float64
    assert ckpt.config == {"lr": 0.1}
    assert ckpt.seed == 7
    assert ckpt.hai_version == __version__
    assert ckpt.created
    restored = torch.nn.Linear(3, 2).double()
    restored.load_state_dict(ckpt.tensors)
    assert torch.equal(restored(torch.ones(1, 3, dtype=torch.float64)), model(torch.ones(1, 3).double()))


def test_numpy_and_shared_storage_tensors(tmp_path: Path):
    base = torch.arange(6.0)
    tied = {"a": base, "b": base.view(2, 3), "c": np.eye(2)}  # shared storage and a numpy array
    save_checkpoint(tmp_path / "t.safetensors", tied)
    out = load_checkpoint(tmp_path / "t.safetensors", framework="numpy").tensors
    np.testing.assert_array_equal(out["b"], np.arange(6.0).reshape(2, 3))
    np.testing.assert_array_equal(out["c"], np.eye(2))


def test_interrupted_save_leaves_the_previous_file_whole(tmp_path: Path, monkeypatch):
    path = tmp_path / "m.safetensors"
    save_checkpoint(path, {"w": torch.zeros(4)}, config={"epoch": 1})
    before = path.read_bytes()

    def interrupted(fd):
        raise KeyboardInterrupt  # as if the user pressed Ctrl-C while the new file was written

    monkeypatch.setattr(files_mod.os, "fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(path, {"w": torch.ones(4)}, config={"epoch": 2})
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert load_checkpoint(path).config == {"epoch": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.safetensors"]  # no temporary left


def test_malformed_and_foreign_files_are_clear_errors(tmp_path: Path):
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(os.urandom(64))
    with pytest.raises(CheckpointError, match="not a readable safetensors"):
        load_checkpoint(garbage)
    truncated = tmp_path / "truncated.safetensors"
    save_checkpoint(truncated, {"w": torch.ones(100)})
    truncated.write_bytes(truncated.read_bytes()[:-50])
    with pytest.raises(CheckpointError):
        load_checkpoint(truncated)
    foreign = tmp_path / "foreign.safetensors"
    save_file({"w": np.ones(2)}, str(foreign))
    with pytest.raises(CheckpointError, match="not a hai checkpoint"):
        load_checkpoint(foreign)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "absent.safetensors")


def test_newer_format_version_asks_to_upgrade(tmp_path: Path):
    header = {"format_version": 99, "hai_version": "9.0.0", "config": {}, "seed": None}
    path = tmp_path / "future.safetensors"
    save_file({"w": np.ones(2)}, str(path), metadata={"hai": json.dumps(header)})
    with pytest.raises(CheckpointError, match="upgrade hai-shared") as info:
        load_checkpoint(path)
    assert "format 99" in str(info.value)


def test_results_round_trip_and_non_finite_numbers(tmp_path: Path):
    path = save_results(
        tmp_path / "r.json", {"mae": np.float64(0.5), "curve": np.arange(3), "bad": float("nan")}, seed=3
    )
    results, meta = load_results(path)
    assert results == {"mae": 0.5, "curve": [0, 1, 2], "bad": None}
    assert meta["seed"] == 3
    assert meta["format_version"] == 1
    (tmp_path / "x.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="not a readable JSON"):
        load_results(tmp_path / "x.json")
    (tmp_path / "y.json").write_text("[1, 2]")
    with pytest.raises(CheckpointError, match="not a hai results file"):
        load_results(tmp_path / "y.json")
