"""``hai scale`` under bad input (issues 20 and 23): one line, exit status 2, nothing trained or written.

Bad numbers are refused by argparse (one line, ``(see ... --help)``) or at the API boundary
(``BNNConfig.validate``, ``ForwardGradientClassifier``); sizes the machine cannot hold are
refused from the sizes alone; output paths are tried before training starts.
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path

import numpy as np
import pytest

from hai.scale.data import load_dataset
from hai.scale.forward_grad import ForwardGradientClassifier
from hai.scale.parallel import BNNConfig, train_bnn
from hai.scale.parallel.training import DATA_SHAPES, network_size, step_memory_bytes
from hai.shared import InputError, OutputError
from hai.shared.cli import main

training = importlib.import_module("hai.scale.parallel.training")


def fails_with_one_line(capsys: pytest.CaptureFixture[str], argv: list[str], match: str) -> str:
    """Run ``hai`` in-process: exit status 2, one line on stderr that contains ``match``."""
    try:
        status = main(argv)
    except SystemExit as exc:  # argparse's usage errors
        status = int(exc.code or 0)
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert status == 2, err
    assert len(err) == 1, err
    assert match.lower() in err[0].lower(), err[0]
    assert captured.out == ""
    return err[0]


@pytest.fixture
def nothing_trained(monkeypatch: pytest.MonkeyPatch) -> None:
    """Training, forward-gradient fitting and the launcher fail the test if they are reached."""

    def never(*args: object, **kwargs: object) -> None:
        raise AssertionError("training started")

    monkeypatch.setattr(training, "_train_bnn", never)
    monkeypatch.setattr(ForwardGradientClassifier, "fit", never)
    launch_module = importlib.import_module("hai.scale.parallel.launch")
    monkeypatch.setattr(launch_module, "_run_job", never)
    quality = importlib.import_module("hai.scale.forward_grad.quality")
    monkeypatch.setattr(quality, "approximation_quality", never)
    monkeypatch.setattr(importlib.import_module("hai.scale.forward_grad"), "approximation_quality", never)


BAD_NUMBERS = [
    (["bnn-train", "--lr", "inf"], "--lr"),
    (["bnn-train", "--lr", "nan"], "--lr"),
    (["bnn-train", "--lr", "0"], "--lr"),
    (["bnn-train", "--lr", "-1"], "--lr"),
    (["fg-train", "--lr", "inf"], "--lr"),
    (["fg-train", "--lr", "nan"], "--lr"),
    (["fg-train", "--lr", "0"], "--lr"),
    (["fg-train", "--lr", "-1"], "--lr"),
    (["bnn-train", "--timeout", "0"], "--timeout"),
    (["bnn-train", "--nproc", "2", "--mode", "sample", "--samples", "2", "--timeout", "0"], "--timeout"),
    (["bnn-train", "--target-accuracy", "5"], "--target-accuracy"),
    (["bnn-train", "--target-accuracy", "-0.1"], "--target-accuracy"),
    (["bnn-train", "--target-accuracy", "nan"], "--target-accuracy"),
    (["bnn-train", "--hidden", ""], "at least one hidden layer"),
    (["bnn-train", "--hidden", "0"], "at least one hidden layer"),
    (["fg-train", "--hidden", ""], "at least one hidden layer"),
    (["fg-quality", "--hidden", ""], "at least one hidden layer"),
    (["bnn-train", "--epochs", "0"], "--epochs"),
    (["bnn-train", "--batch-size", "0"], "--batch-size"),
    (["bnn-train", "--samples", "0"], "--samples"),
    (["bnn-train", "--eval-samples", "0"], "--eval-samples"),
    (["bnn-train", "--max-steps", "0"], "--max-steps"),
    (["bnn-train", "--nproc", "0"], "--nproc"),
    (["bnn-train", "--nproc", "-2"], "--nproc"),
    (["bnn-train", "--kl-weight", "inf"], "--kl-weight"),
    (["bnn-train", "--prior-std", "0"], "--prior-std"),
    (["bnn-train", "--posterior-std", "nan"], "--posterior-std"),
    (["bnn-train", "--data", "regression", "--noise-std", "inf"], "noise_std must be positive and finite"),
    (["fg-train", "--epochs", "0"], "--epochs"),
    (["fg-train", "--batch-size", "0"], "--batch-size"),
    (["fg-quality", "--samples", "0"], "--samples"),
    (["fg-quality", "--repeats", "0"], "--repeats"),
    (["bnn-train", "--threads", "100000"], "--threads: must be at most"),
]


@pytest.mark.usefixtures("nothing_trained")
@pytest.mark.parametrize(("argv", "match"), BAD_NUMBERS, ids=[" ".join(a) for a, _ in BAD_NUMBERS])
def test_bad_numbers_are_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    argv: list[str],
    match: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    fails_with_one_line(capsys, ["scale", *argv], match)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "argv",
    [
        ["--samples", "1000000000000"],
        ["--nproc", "2", "--mode", "sample", "--samples", "1000000000000"],
        ["--hidden", "100000000000"],
        ["--data", "regression", "--hidden", "30000000,30000000"],
        ["fg-train", "--hidden", "100000000000"],
        ["fg-train", "--aggregation", "mean", "--tangents", "1000000000000"],
        ["fg-quality", "--tangents", "1000000000000"],
        ["fg-quality", "--hidden", "100000000000"],
    ],
    ids=["samples", "samples-2-ranks", "wide", "deep", "fg-wide", "fg-tangents", "quality-k", "quality-wide"],
)
def test_sizes_the_machine_cannot_hold_are_refused_up_front(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    argv: list[str],
) -> None:
    """BNN training is refused before it starts; forward-gradient training and the quality table at
    the start of ``fit`` / ``approximation_quality``, before the network or the tangents exist."""
    monkeypatch.chdir(tmp_path)
    if not argv[0].startswith("fg-"):
        request.getfixturevalue("nothing_trained")
    command = argv if argv[0].startswith("fg-") else ["bnn-train", *argv]
    line = fails_with_one_line(capsys, ["scale", *command], "would need about")
    assert list(tmp_path.iterdir()) == []
    assert "of memory; this machine has" in line


def test_the_memory_estimate_counts_the_networks_weights() -> None:
    """Network sizes from the sizes alone equal the built networks'; the named data sets' shapes hold."""
    for name, (n_features, n_outputs, image_shape) in DATA_SHAPES.items():
        data = load_dataset(name)
        assert data.x_train.shape[1] == n_features
        assert getattr(data, "n_classes", 1) == n_outputs
        assert getattr(data, "image_shape", None) == image_shape
    from hai.scale.models import mlp, small_cnn

    for hidden in [(8,), (64, 32), (5, 6, 7)]:
        params, activations = network_size(BNNConfig(hidden=hidden), 16, 4, None)
        assert params == sum(p.numel() for p in mlp(16, 4, hidden).parameters())
        assert activations == 16 + sum(hidden) + 4
    assert network_size(BNNConfig(model="cnn"), 64, 10, (8, 8))[0] == sum(
        p.numel() for p in small_cnn(10, (8, 8)).parameters()
    )
    # Linear in the local samples: sample mode on 4 ranks holds a quarter of the samples per rank.
    one = step_memory_bytes(BNNConfig(samples=8, mode="local"), 64, 10, None, 1)
    four = step_memory_bytes(BNNConfig(samples=8, mode="sample"), 64, 10, None, 4)
    params = network_size(BNNConfig(), 64, 10, None)[0]
    assert one - four == pytest.approx(4 * 6 * 2 * (params + 64 * (64 + 64 + 10)))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"lr": float("inf")}, "lr must be a finite number"),
        ({"lr": float("nan")}, "lr must be a finite number"),
        ({"lr": 0.0}, "lr must be a positive number"),
        ({"hidden": ()}, "at least one hidden layer"),
        ({"target_accuracy": 5.0}, "between 0 and 1"),
        ({"epochs": 0}, "epochs must be a positive integer"),
        ({"kl_weight": -1.0}, "kl_weight"),
        ({"samples": 10**12}, "would need about"),
    ],
)
def test_the_bnn_api_refuses_the_same(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(InputError, match=match):
        train_bnn(BNNConfig(data="synthetic", **kwargs))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"lr": float("inf")}, "finite"), ({"lr": -1.0}, "positive"), ({"hidden": ()}, "hidden layer")],
)
def test_the_forward_gradient_api_refuses_the_same(kwargs: dict[str, object], match: str) -> None:
    data = load_dataset("synthetic")
    with pytest.raises(InputError, match=match):
        ForwardGradientClassifier(epochs=1, **kwargs).fit(data.x_train, data.y_train)  # type: ignore[arg-type]


def _bad_paths(tmp_path: Path) -> list[tuple[str, str]]:
    """(path, what the message says) for outputs that cannot be written."""
    a_file = tmp_path / "a_file"
    a_file.write_text("keep")
    (tmp_path / "a_folder").mkdir()
    cases = [
        (str(a_file / "model.safetensors"), "is a file, not a folder"),
        (str(tmp_path / "a_folder"), "it is a folder"),
    ]
    if sys.platform.startswith("linux"):  # no file can be made in /proc, not even by root
        cases.append(("/proc/hai-test/model.safetensors", "no file can be created in /proc"))
    if os.geteuid() != 0:
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        cases.append((str(locked / "model.safetensors"), "no file can be created"))
    return cases


@pytest.mark.usefixtures("nothing_trained")
@pytest.mark.parametrize("nproc", ["1", "2"])
def test_an_unwritable_checkpoint_fails_before_training(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, nproc: str
) -> None:
    for path, match in _bad_paths(tmp_path):
        argv = ["scale", "bnn-train", "--nproc", nproc, "--checkpoint", path]
        if nproc == "2":
            argv += ["--mode", "sample", "--samples", "2"]
        fails_with_one_line(capsys, argv, match)
    assert (tmp_path / "a_file").read_text() == "keep"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "locked") == ["a_file", "a_folder"]
    assert list((tmp_path / "a_folder").iterdir()) == []


@pytest.mark.usefixtures("nothing_trained")
def test_an_unwritable_fg_quality_folder_fails_before_any_work(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    a_file = tmp_path / "a_file"
    a_file.write_text("keep")
    fails_with_one_line(capsys, ["scale", "fg-quality", "--out", str(a_file)], "is a file, not a folder")
    fails_with_one_line(
        capsys, ["scale", "fg-quality", "--out", str(a_file / "sub")], "is a file, not a folder"
    )
    (tmp_path / "out" / "fg_quality.json").mkdir(parents=True)  # a folder where a file goes
    fails_with_one_line(capsys, ["scale", "fg-quality", "--out", str(tmp_path / "out")], "it is a folder")
    if sys.platform.startswith("linux"):
        argv = ["scale", "fg-quality", "--out", "/proc/hai-test"]
        fails_with_one_line(capsys, argv, "no file can be created")
    assert a_file.read_text() == "keep"
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["a_file", "fg_quality.json", "out"]


def test_check_output_file_leaves_nothing_behind(tmp_path: Path) -> None:
    target = tmp_path / "new" / "deeper" / "model.safetensors"
    assert training.check_output_file(target) == target
    assert list(tmp_path.iterdir()) == []  # no probe file, and no folder made
    with pytest.raises(OutputError, match="path is empty"):
        training.check_output_file("")


def test_hai_scale_alone_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["scale"]) == 2
    assert "a command is needed" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("content", "match"),
    [(b"not a safetensors file", "not a readable safetensors checkpoint"), (None, "no training state")],
)
def test_resume_from_a_corrupt_or_foreign_checkpoint_is_one_line_and_keeps_the_file(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, content: bytes | None, match: str
) -> None:
    ckpt = tmp_path / "run.safetensors"
    if content is None:
        from hai.shared import save_checkpoint

        save_checkpoint(ckpt, {"w": np.zeros(2)})
    else:
        ckpt.write_bytes(content)
    before = ckpt.read_bytes()
    argv = [
        "scale",
        "bnn-train",
        "--data",
        "synthetic",
        "--checkpoint",
        str(ckpt),
        "--resume",
        "--epochs",
        "1",
    ]
    fails_with_one_line(capsys, argv, match)
    assert ckpt.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["run.safetensors"]
