"""Checkpoints (round trip, foreign/corrupt refused, resume) and the ``train``/``design`` handlers
(bad input → InputError/CheckpointError, nothing overwritten)."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from hai.photonics.dataset import generate_dataset, load_dataset
from hai.photonics.inverse.checkpoints import load_model, save_model
from hai.photonics.inverse.cli import add_commands
from hai.photonics.inverse.model import ModelConfig, OptoLlama
from hai.photonics.inverse.training import TrainConfig, train
from hai.photonics.simulate import OPTOLLAMA
from hai.photonics.stacks import Vocabulary
from hai.shared import CheckpointError, InputError, save_checkpoint, torch_threads


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    with torch_threads(1):
        yield


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser()
    add_commands(parser.add_subparsers())
    return parser


def _run(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    return int(args.handler(args))


def test_checkpoint_round_trip_and_refusals(tmp_path: Path) -> None:
    vocab = Vocabulary()
    model = OptoLlama(ModelConfig.sized("tiny"))
    path = save_model(tmp_path / "m.safetensors", model, vocab, OPTOLLAMA)
    loaded = load_model(path, kind="optollama", vocab=vocab)
    x = torch.randint(0, len(vocab), (2, 21))
    t, s = torch.rand(2), torch.rand(2, 3, 171)
    model.eval()
    loaded.model.eval()
    assert torch.equal(model(x, t, s), loaded.model(x, t, s))
    with pytest.raises(CheckpointError, match="optogpt"):
        load_model(path, kind="optogpt")
    with pytest.raises(CheckpointError, match="another vocabulary"):
        load_model(path, vocab=Vocabulary(["TiO2", "SiO2"]))
    corrupt = tmp_path / "corrupt.safetensors"
    corrupt.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError):
        load_model(corrupt)
    foreign = save_checkpoint(tmp_path / "foreign.safetensors", {"w": torch.zeros(2)}, config={"x": 1})
    with pytest.raises(CheckpointError, match="not a hai-photonics inverse"):
        load_model(foreign)


def test_resume_equals_uninterrupted(tmp_path: Path) -> None:
    info = generate_dataset(tmp_path / "d", 64, seed=2, shard_size=64, progress_bar=False)
    data = load_dataset(info.path)
    cfg = dict(model="optollama", size="tiny", batch_size=8, eval_every=5, val_fraction=0.1, warmup=2)
    first = train(data, tmp_path / "a", TrainConfig(steps=20, **cfg), progress_bar=False, stop_at=7)  # type: ignore[arg-type]
    assert first.step == 7
    resumed = train(data, tmp_path / "a", TrainConfig(steps=20, **cfg), progress_bar=False)  # type: ignore[arg-type]
    straight = train(data, tmp_path / "b", TrainConfig(steps=20, **cfg), progress_bar=False)  # type: ignore[arg-type]
    a = load_model(resumed.last_path).model.state_dict()
    b = load_model(straight.last_path).model.state_dict()
    assert resumed.step == straight.step == 20
    for name in a:
        assert torch.allclose(a[name], b[name], atol=1e-5), name


def _csv(path: Path, rows: np.ndarray) -> Path:
    path.write_text("wavelength_nm,R,A,T\n" + "\n".join(",".join(f"{v:g}" for v in r) for r in rows))
    return path


def _good_rows(wl: np.ndarray) -> np.ndarray:
    return np.stack([wl, np.full_like(wl, 0.3), np.full_like(wl, 0.1), np.full_like(wl, 0.6)], axis=1)


def test_design_template_preset_and_csv(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "design.json"
    base = ["design", "--designer", "template", "--library-size", "300", "-k", "3"]
    assert _run([*base, "--preset", "bragg", "--out", str(out)]) == 0
    assert "design" in out.read_text()
    wl = np.arange(250, 2101, 25.0)  # another grid that covers the model's: interpolated with a note
    assert _run([*base, "--target", str(_csv(tmp_path / "t.csv", _good_rows(wl)))]) == 0
    assert "interpolated" in capsys.readouterr().out


@pytest.mark.parametrize(
    "problem",
    ["short", "range", "nan", "closure", "columns", "designer", "preset", "checkpoint"],
)
def test_design_bad_input_changes_nothing(problem: str, tmp_path: Path) -> None:
    out = tmp_path / "design.json"
    out.write_text("keep")
    wl = np.asarray(OPTOLLAMA.wavelengths_nm)
    rows = _good_rows(wl)
    argv = ["design", "--designer", "template", "--library-size", "50", "--out", str(out)]
    if problem == "short":
        rows = _good_rows(np.arange(400, 1001, 10.0))
    elif problem == "range":
        rows[:, 1] = 30.0
    elif problem == "nan":
        rows[5, 2] = np.nan
    elif problem == "closure":
        rows[:, 3] = 0.9
    elif problem == "columns":
        rows = rows[:, :2]
    target = _csv(tmp_path / "t.csv", rows)
    if problem == "designer":
        argv += ["--target", str(target), "--designer", "needle"]
    elif problem == "preset":
        argv += ["--preset", "mirror"]
    elif problem == "checkpoint":
        bad = tmp_path / "bad.safetensors"
        bad.write_bytes(b"\x00" * 64)
        argv = [
            "design",
            "--designer",
            "optollama",
            "--checkpoint",
            str(bad),
            "--preset",
            "bragg",
            "--out",
            str(out),
        ]
    else:
        argv += ["--target", str(target)]
    error = CheckpointError if problem == "checkpoint" else InputError
    with pytest.raises(error):
        _run(argv)
    assert out.read_text() == "keep"


def test_train_handler(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    info = generate_dataset(tmp_path / "d", 40, seed=4, shard_size=40, progress_bar=False)
    argv = [
        "train",
        "--model",
        "optogpt",
        "--data",
        str(info.path),
        "--out",
        str(tmp_path / "run"),
        "--size",
        "tiny",
        "--steps",
        "4",
        "--batch-size",
        "8",
        "--eval-every",
        "2",
        "--json",
    ]
    assert _run(argv) == 0
    assert '"step": 4' in capsys.readouterr().out
    with pytest.raises(CheckpointError, match="optogpt"):  # the folder holds an OptoGPT run
        _run(["train", "--model", "optollama", *argv[3:]])
    with pytest.raises(InputError):
        _run(["train", "--model", "bert", "--data", str(info.path), "--out", str(tmp_path / "x")])
