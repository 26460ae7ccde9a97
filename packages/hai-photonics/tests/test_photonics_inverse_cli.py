"""Checkpoints (round trip, foreign/corrupt refused, resume) and ``hai photonics train``/``design``
end to end through the ``hai`` entry point: designs whose reported MAE is the re-simulated one,
and bad input → one line on stderr, exit status 2, nothing overwritten."""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from hai.photonics.dataset import generate_dataset, load_dataset
from hai.photonics.inverse.checkpoints import load_model, save_model, shipped_model_path
from hai.photonics.inverse.cli import add_commands
from hai.photonics.inverse.model import ModelConfig, OptoLlama
from hai.photonics.inverse.training import TrainConfig, train
from hai.photonics.simulate import OPTOLLAMA, simulate
from hai.photonics.stacks import Vocabulary
from hai.shared import CheckpointError, InputError, save_checkpoint, torch_threads
from hai.shared.cli import main


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
    first = train(data, tmp_path / "a", TrainConfig(steps=12, **cfg), progress_bar=False, stop_at=7)  # type: ignore[arg-type]
    assert first.step == 7
    resumed = train(data, tmp_path / "a", TrainConfig(steps=12, **cfg), progress_bar=False)  # type: ignore[arg-type]
    straight = train(data, tmp_path / "b", TrainConfig(steps=12, **cfg), progress_bar=False)  # type: ignore[arg-type]
    a = load_model(resumed.last_path).model.state_dict()
    b = load_model(straight.last_path).model.state_dict()
    assert resumed.step == straight.step == 12
    for name in a:
        assert torch.allclose(a[name], b[name], atol=1e-5), name


def _csv(path: Path, rows: np.ndarray) -> Path:
    path.write_text("wavelength_nm,R,A,T\n" + "\n".join(",".join(f"{v:g}" for v in r) for r in rows))
    return path


def _good_rows(wl: np.ndarray) -> np.ndarray:
    return np.stack([wl, np.full_like(wl, 0.3), np.full_like(wl, 0.1), np.full_like(wl, 0.6)], axis=1)


def _fails_in_one_line(argv: list[str], capsys: pytest.CaptureFixture[str], match: str) -> None:
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith("hai: error:"), err
    assert match in err, err


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Tiny OptoLlama and OptoGPT checkpoints trained for a few steps through the CLI."""
    root = tmp_path_factory.mktemp("trained")
    info = generate_dataset(root / "d", 40, seed=4, shard_size=40, progress_bar=False)
    out = {"data": info.path}
    with torch_threads(1):
        for model in ("optollama", "optogpt"):
            argv = ["photonics", "train", "--model", model, "--data", str(info.path), "--out"]
            argv += [str(root / model), "--size", "tiny", "--steps", "4", "--batch-size", "8"]
            assert main([*argv, "--eval-every", "2", "--json", "--threads", "1"]) == 0
            out[model] = root / model / "best.safetensors"
    return out


def test_train_json_and_resume(trained: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    folder = trained["optogpt"].parent
    argv = ["photonics", "train", "--model", "optogpt", "--data", str(trained["data"]), "--out"]
    argv += [str(folder), "--size", "tiny", "--steps", "6", "--batch-size", "8", "--eval-every", "2"]
    assert main([*argv, "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["step"] == 6  # resumed at 4, not started afresh
    assert [h["step"] for h in summary["history"]] == [2, 4, 6]
    assert summary["best_val_loss"] == pytest.approx(min(h["val_loss"] for h in summary["history"]))


@pytest.mark.parametrize("designer", ["optollama", "optogpt", "template"])
def test_design_reports_the_resimulated_mae(
    designer: str, trained: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plot, out = tmp_path / "d.png", tmp_path / "d.json"
    argv = ["photonics", "design", "--preset", "bragg", "--designer", designer, "-k", "4"]
    argv += ["--json", "--plot", str(plot), "--out", str(out)]
    if designer == "template":
        argv += ["--library", str(trained["data"])]
    else:
        argv += ["--checkpoint", str(trained[designer])]
    capsys.readouterr()
    assert main(argv) == 0
    result = json.loads(capsys.readouterr().out)
    assert json.loads(out.read_text()) == result
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert result["designer"] == designer
    assert 0 < result["valid_fraction"] <= 1
    from hai.photonics.inverse.targets import preset_target

    target, _ = preset_target("bragg", OPTOLLAMA)
    resim = simulate(result["design"], OPTOLLAMA).stacked()[0].clamp(0, 1)
    assert result["mae"][0] == pytest.approx(float((resim - target.double()).abs().mean()), abs=1e-5)


def test_design_refine_never_worse(trained: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["photonics", "design", "--preset", "anti-reflection", "--designer", "optollama"]
    argv += ["--checkpoint", str(trained["optollama"]), "-k", "2", "--refine", "--json"]
    capsys.readouterr()
    assert main(argv) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["refined"] is True
    assert result["mae"][0] <= result["mae_before_refine"][0] + 1e-9
    target = torch.tensor([[0.0] * 171, [0.0] * 171, [1.0] * 171], dtype=torch.float64)
    resim = simulate(result["design"], OPTOLLAMA).stacked()[0].clamp(0, 1)
    assert result["mae"][0] == pytest.approx(float((resim - target).abs().mean()), abs=1e-5)


def test_design_template_csv_on_another_grid(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    wl = np.arange(250, 2101, 25.0)  # another grid that covers the model's: interpolated with a note
    target = _csv(tmp_path / "t.csv", _good_rows(wl))
    argv = ["photonics", "design", "--designer", "template", "--library-size", "300", "-k", "3"]
    capsys.readouterr()
    assert main([*argv, "--target", str(target)]) == 0
    assert "interpolated" in capsys.readouterr().out


BAD = {
    "short": "covers 400–1000 nm",
    "shape": "needs 4 columns",
    "range": "[0, 1]",
    "nan": "NaN",
    "closure": "R + A + T",
    "designer": "unknown designer",
    "preset": "unknown target preset",
    "corrupt": "bad.safetensors",
    "foreign": "not a hai-photonics inverse",
    "other-kind": "holds an optogpt model",
    "missing": "does not exist",
}


@pytest.mark.parametrize("problem", sorted(BAD))
def test_design_bad_input_one_line_exit_2_nothing_written(
    problem: str, trained: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out, plot = tmp_path / "design.json", tmp_path / "design.png"
    out.write_text("keep")
    wl = np.asarray(OPTOLLAMA.wavelengths_nm)
    rows = _good_rows(wl)
    argv = ["photonics", "design", "--designer", "template", "--library-size", "50"]
    argv += ["--out", str(out), "--plot", str(plot)]
    if problem == "short":
        rows = _good_rows(np.arange(400, 1001, 10.0))
    elif problem == "shape":
        rows = np.concatenate([rows, rows[:, :1]], axis=1)[:, :5]
        rows[:, 4] = 0.0
    elif problem == "range":
        rows[:, 1] = 30.0
    elif problem == "nan":
        rows[5, 2] = np.nan
    elif problem == "closure":
        rows[:, 3] = 0.9
    target = _csv(tmp_path / "t.csv", rows)
    if problem == "shape":
        target.write_text(target.read_text().replace("wavelength_nm,R,A,T", "wavelength_nm,R,A,T,X"))
    checkpoint = None
    if problem == "designer":
        argv[3] = "needle"
    elif problem == "corrupt":
        checkpoint = tmp_path / "bad.safetensors"
        checkpoint.write_bytes(b"\x00" * 64)
    elif problem == "foreign":
        checkpoint = save_checkpoint(tmp_path / "foreign.safetensors", {"w": torch.zeros(2)}, config={"x": 1})
    elif problem == "other-kind":
        checkpoint = trained["optogpt"]
    elif problem == "missing":
        checkpoint = tmp_path / "nothing.safetensors"
    if checkpoint is not None:
        argv[3] = "optollama"
        argv += ["--checkpoint", str(checkpoint), "--preset", "bragg"]
    elif problem == "preset":
        argv += ["--preset", "mirror"]
    else:
        argv += ["--target", str(target)]
    _fails_in_one_line(argv, capsys, BAD[problem])
    assert out.read_text() == "keep"
    assert not plot.exists()


def test_train_refuses_bad_input(
    trained: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = str(trained["data"])
    folder = trained["optogpt"].parent
    before = (folder / "last.safetensors").read_bytes()
    base = ["photonics", "train", "--data", data, "--size", "tiny", "--steps", "2", "--batch-size", "8"]
    # the folder holds an OptoGPT run: resuming it as OptoLlama is refused
    _fails_in_one_line([*base, "--model", "optollama", "--out", str(folder)], capsys, "optogpt")
    # a data set of another vocabulary cannot resume that run
    other = generate_dataset(
        tmp_path / "other", 16, seed=1, vocab=Vocabulary(["TiO2", "SiO2"]), progress_bar=False
    ).path
    argv = ["photonics", "train", "--model", "optogpt", "--data", str(other), "--out", str(folder)]
    _fails_in_one_line(
        [*argv, "--size", "tiny", "--steps", "8", "--batch-size", "8"], capsys, "another vocabulary"
    )
    assert (folder / "last.safetensors").read_bytes() == before
    _fails_in_one_line([*base, "--model", "bert", "--out", str(tmp_path / "x")], capsys, "unknown model")
    _fails_in_one_line([*base, "--size", "huge", "--out", str(tmp_path / "x")], capsys, "unknown model size")
    _fails_in_one_line([*base, "--data", str(tmp_path), "--out", str(tmp_path / "x")], capsys, "neither")
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize(
    ("target", "match"),
    [
        (np.full((3, 100), 0.3), "shape"),
        (np.full((2, 171), 0.5), "shape"),
        (np.full((3, 171), -0.2), "[0, 1]"),
        (np.full((3, 171), np.nan), "NaN"),
        (np.full((3, 171), 0.5), "R + A + T"),
        ("bright", "not an array"),
    ],
)
def test_designers_refuse_bad_targets_in_python(target: object, match: str, trained: dict[str, Path]) -> None:
    from hai.photonics.inverse import OptoGPTDesigner, OptoLlamaDesigner

    for designer in (OptoLlamaDesigner(trained["optollama"]), OptoGPTDesigner(trained["optogpt"])):
        with pytest.raises(InputError, match=re.escape(match)):
            designer.design(target, k=2)


@pytest.mark.parametrize("kind", ["optollama", "optogpt"])
def test_shipped_model_loads_with_its_recipe(kind: str) -> None:
    path = shipped_model_path(kind)
    assert path.stat().st_size < 5e6
    loaded = load_model(path, kind=kind, vocab=Vocabulary())  # the default vocabulary's tokens
    recipe = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
    assert recipe["file"] == path.name
    assert recipe["bytes"] == path.stat().st_size
    assert recipe["parameters"] == sum(p.numel() for p in loaded.model.parameters())
    assert recipe["model_config"] == loaded.model.config.to_dict()
    assert recipe["data"]["n_stacks"] == loaded.training["data_n"]
    assert recipe["best_step"] == loaded.training["step"]
    assert loaded.simulation == OPTOLLAMA


def test_design_uses_the_shipped_model_by_default(capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert main(["photonics", "design", "--preset", "bragg", "-k", "2", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["designer"] == "optollama"
    from hai.photonics.inverse.targets import preset_target

    target, _ = preset_target("bragg", OPTOLLAMA)
    resim = simulate(result["design"], OPTOLLAMA).stacked()[0].clamp(0, 1)
    assert result["mae"][0] == pytest.approx(float((resim - target.double()).abs().mean()), abs=1e-5)
