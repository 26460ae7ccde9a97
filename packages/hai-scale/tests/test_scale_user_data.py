"""``hai scale bnn-train --data FILE.csv|FILE.npz --target COLUMN`` (issue 23.4): user data.

A CSV file (header, numeric features, a named target column) or an NPZ file (arrays x and y,
never unpickled) is split 80/20 by ``--split-seed``; every rank reads the same file; a bad file is
one line, exit status 2, and nothing is trained.
"""

from __future__ import annotations

import importlib
import json
import os
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from hai.scale.data import ClassificationData, RegressionData, load_data_file
from hai.scale.parallel import BNNConfig, train_bnn
from hai.scale.parallel.launch import _args_to_argv
from hai.scale.parallel.training import network_size
from hai.shared import InputError
from hai.shared.cli import main

training = importlib.import_module("hai.scale.parallel.training")
launch_module = importlib.import_module("hai.scale.parallel.launch")


def separable(n: int = 300, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two classes split by the plane f1 + 0.5 f2 = 0, with a margin (f3 is noise)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(4 * n, 3))
    score = x[:, 0] + 0.5 * x[:, 1]
    keep = np.abs(score) > 0.3
    x, score = x[keep][:n], score[keep][:n]
    return x, (score > 0).astype(np.int64)


def write_csv(
    path: Path, x: np.ndarray, labels: list[str], names: tuple[str, ...] = ("f1", "f2", "f3")
) -> Path:
    lines = [",".join((*names, "label"))]
    lines += [",".join([*(repr(float(v)) for v in row), lab]) for row, lab in zip(x, labels, strict=True)]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def sep_csv(tmp_path: Path) -> Path:
    x, y = separable()
    return write_csv(tmp_path / "sep.csv", x, ["pos" if v else "neg" for v in y])


def run_json(capsys: pytest.CaptureFixture[str], argv: list[str]) -> dict[str, Any]:
    status = main(["scale", "bnn-train", *argv, "--json"])
    captured = capsys.readouterr()
    assert status == 0, captured.err
    data: dict[str, Any] = json.loads(captured.out)
    return data


SMALL = ["--hidden", "16", "--batch-size", "32", "--samples", "2", "--eval-samples", "8"]


def test_a_separable_csv_trains_to_high_accuracy(capsys: pytest.CaptureFixture[str], sep_csv: Path) -> None:
    out = run_json(capsys, ["--data", str(sep_csv), "--target", "label", "--epochs", "5", *SMALL])
    assert out["accuracy"] > 0.9
    assert out["data"] == "sep.csv"
    assert out["n_parameters"] == 2 * network_size(BNNConfig(hidden=(16,)), 3, 2, None)[0]  # μ and ρ
    assert len(out["history"]) == 5
    assert out["history"][-1]["train_loss"] < out["history"][0]["train_loss"]


def test_the_file_is_split_80_20_by_the_split_seed_and_standardised(sep_csv: Path) -> None:
    _, y = separable()
    d = load_data_file(sep_csv, target="label", seed=0)
    assert isinstance(d, ClassificationData)
    assert d.classes == ("neg", "pos")
    assert d.n_classes == 2
    assert (len(d.x_train), len(d.x_test)) == (240, 60)
    # the training rows are standardised with their own mean and std
    torch.testing.assert_close(
        d.x_train.double().mean(0), torch.zeros(3, dtype=torch.float64), atol=1e-6, rtol=0
    )
    torch.testing.assert_close(
        d.x_train.double().std(0, unbiased=False), torch.ones(3, dtype=torch.float64), atol=1e-6, rtol=0
    )
    again = load_data_file(sep_csv, target="label", seed=0)
    torch.testing.assert_close(again.x_test, d.x_test, rtol=0, atol=0)
    other = load_data_file(sep_csv, target="label", seed=1)
    assert not torch.equal(other.y_test, d.y_test) or not torch.equal(other.x_test, d.x_test)
    # every row lands in exactly one split, with its label
    total = int(d.y_train.sum() + d.y_test.sum())
    assert total == int(y.sum())


def test_npz_and_csv_give_the_same_data(tmp_path: Path, sep_csv: Path) -> None:
    x, y = separable()
    np.savez(tmp_path / "sep.npz", x=x, y=y)
    a = load_data_file(sep_csv, target="label")
    b = load_data_file(tmp_path / "sep.npz")
    assert isinstance(b, ClassificationData)
    assert b.classes == ("0", "1")
    torch.testing.assert_close(a.x_train, b.x_train, rtol=0, atol=1e-6)
    assert torch.equal(a.y_train, b.y_train)
    assert torch.equal(a.y_test, b.y_test)


def test_a_numeric_target_is_regression_with_a_learned_noise(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    x = rng.uniform(-1, 1, size=(400, 2)) * np.array([1.0, 100.0])  # features of unlike scales
    y = np.sin(3 * x[:, 0]) + 0.01 * x[:, 1] + rng.normal(scale=0.1, size=400)
    path = tmp_path / "reg.csv"
    rows = "".join(f"{r[0]:.17g},{r[1]:.17g},{t:.17g}\n" for r, t in zip(x, y, strict=True))
    path.write_text("a,b,y\n" + rows)
    d = load_data_file(path, target="y")
    assert isinstance(d, RegressionData)
    assert d.noise_std is None
    assert d.gap is None
    torch.testing.assert_close(d.x_train.double().std(0, unbiased=False), torch.ones(2, dtype=torch.float64))
    # the targets are kept as they are: train and test hold all of y
    assert sorted(torch.cat([d.y_train, d.y_test]).tolist()) == pytest.approx(sorted(y.tolist()), abs=1e-6)
    config = BNNConfig(data=str(path), target="y", hidden=(16,), batch_size=32, epochs=3, samples=2)
    result = train_bnn(config)
    out = result.to_dict()
    assert out["data"] == "reg.csv"
    assert out["noise"] == "learned"
    assert result.model is not None
    log_std = dict(result.model.named_parameters())["noise_log_std"]
    assert out["noise_std"] == pytest.approx(float(log_std.detach().exp()))


def test_the_ranks_get_the_file_and_its_settings(sep_csv: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(sep_csv.parent)
    config = BNNConfig(data="sep.csv", target="label", task="classification", noise_std=None)
    argv = _args_to_argv(config, 60.0)
    assert f"--data={sep_csv.resolve()}" in argv
    assert "--target=label" in argv
    assert "--task=classification" in argv
    reg = BNNConfig(data="regression", noise_std="learned")
    assert "--noise=learned" in _args_to_argv(reg, 60.0)


def test_the_memory_estimate_uses_the_files_shape(
    capsys: pytest.CaptureFixture[str], sep_csv: Path, nothing_trained: None
) -> None:
    weights = network_size(BNNConfig(hidden=(16,)), 3, 2, None)[0]  # 3 features, 2 classes: 98
    assert weights == 98
    err = fails_with_one_line(
        capsys,
        ["--data", str(sep_csv), "--target", "label", "--hidden", "16", "--samples", "1000000000000"],
        "memory",
    )
    assert f"({weights:,} weights)" in err


@pytest.fixture
def nothing_trained(monkeypatch: pytest.MonkeyPatch) -> None:
    def never(*args: object, **kwargs: object) -> None:
        raise AssertionError("training started")

    monkeypatch.setattr(training, "_train_bnn", never)
    monkeypatch.setattr(launch_module, "_run_job", never)


def fails_with_one_line(capsys: pytest.CaptureFixture[str], argv: list[str], match: str) -> str:
    try:
        status = main(["scale", "bnn-train", *argv])
    except SystemExit as exc:
        status = int(exc.code or 0)
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert status == 2, err
    assert len(err) == 1, err
    assert match.lower() in err[0].lower(), err[0]
    assert captured.out == ""
    return err[0]


class Evil:
    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, ("touch pwned",))


def bad_files(tmp: Path) -> list[tuple[str, list[str], str]]:
    """(name, extra argv, what the error line must say) for each bad file, written into ``tmp``."""
    x, y = separable(20)
    labels = ["a" if v else "b" for v in y]
    write_csv(tmp / "ok.csv", x, labels)
    text = (tmp / "ok.csv").read_text().splitlines()
    cells = text[4].split(",")
    (tmp / "word.csv").write_text("\n".join([*text[:4], ",".join(["1.0", "abc", *cells[2:]]), *text[5:]]))
    (tmp / "empty_cell.csv").write_text("\n".join([*text[:4], ",".join(["1.0", "", *cells[2:]]), *text[5:]]))
    (tmp / "nan.csv").write_text("\n".join([*text[:6], ",".join(["1.0", "2.0", "nan", cells[3]]), *text[7:]]))
    (tmp / "ragged.csv").write_text("\n".join([*text[:3], "1.0,2.0", *text[4:]]))
    (tmp / "nan_target.csv").write_text(
        "f1,f2,label\n" + "".join(f"{i},{i},{i * 0.5}\n" for i in range(9)) + "1,1,nan\n"
    )
    write_csv(tmp / "one_class.csv", x, ["same"] * len(x))
    (tmp / "empty.csv").write_text("")
    (tmp / "binary.csv").write_bytes(b"\xff\xfe\x00\x81garbage\x00")
    (tmp / "few.csv").write_text("f1,label\n1,a\n2,b\n")
    with open(tmp / "pickle.npz", "wb") as f:
        pickle.dump({"x": Evil(), "y": y}, f)
    np.savez(tmp / "objects.npz", x=np.array([[object()]] * 6, dtype=object), y=np.arange(6))
    np.savez(tmp / "no_y.npz", x=x)
    np.savez(tmp / "shape.npz", x=x, y=np.zeros((len(x), 2)))
    np.savez(tmp / "inf.npz", x=np.where(np.arange(x.size).reshape(x.shape) == 7, np.inf, x), y=y)
    (tmp / "zip.npz").write_bytes(b"PK\x03\x04 truncated")
    return [
        ("missing.csv", ["--target", "label"], "does not exist"),
        ("missing.npz", [], "does not exist"),
        ("ok.csv", [], "--target"),
        ("ok.csv", ["--target", "nothere"], "no column 'nothere'"),
        ("word.csv", ["--target", "label"], "row 5, column 'f2': 'abc' is not a number"),
        ("empty_cell.csv", ["--target", "label"], "row 5, column 'f2': is empty"),
        ("nan.csv", ["--target", "label"], "row 7, column 'f3': 'nan' is not a finite number"),
        ("ragged.csv", ["--target", "label"], "row 4: 2 cells"),
        ("nan_target.csv", ["--target", "label", "--task", "regression"], "row 11"),
        ("one_class.csv", ["--target", "label"], "one class only"),
        ("ok.csv", ["--target", "label", "--task", "regression"], "numeric targets"),
        ("empty.csv", ["--target", "label"], "is empty"),
        ("binary.csv", ["--target", "label"], "not a text csv"),
        ("few.csv", ["--target", "label"], "at least 5"),
        ("pickle.npz", [], "pickled objects are never loaded"),
        ("objects.npz", [], "pickled objects are never loaded"),
        ("no_y.npz", [], "no array 'y'"),
        ("shape.npz", [], "must be (n, d)"),
        ("inf.npz", [], "x[2, 1] is inf"),
        ("zip.npz", [], "not a readable npz"),
    ]


@pytest.mark.parametrize("nproc", ["1", "2"])
def test_bad_files_are_one_line_exit_2_and_nothing_is_trained(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    nothing_trained: None,
    nproc: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    for name, extra, match in bad_files(tmp_path):
        argv = ["--nproc", nproc, "--mode", "sample", "--data", str(tmp_path / name), *extra]
        fails_with_one_line(capsys, argv, match)
    assert not (tmp_path / "pwned").exists()


def test_bad_files_through_the_api_raise_input_error(tmp_path: Path) -> None:
    for name, extra, match in bad_files(tmp_path):
        target = extra[extra.index("--target") + 1] if "--target" in extra else None
        task = extra[extra.index("--task") + 1] if "--task" in extra else None
        with pytest.raises(InputError) as info:
            BNNConfig(data=str(tmp_path / name), target=target, task=task).validate(1)
        assert match.lower() in str(info.value).lower(), (name, str(info.value))


def test_options_of_a_file_are_refused_for_a_named_data_set(
    capsys: pytest.CaptureFixture[str], nothing_trained: None, sep_csv: Path
) -> None:
    fails_with_one_line(capsys, ["--data", "digits", "--target", "label"], "target applies to a data file")
    fails_with_one_line(capsys, ["--data", "synthetic", "--task", "regression"], "task applies")
    fails_with_one_line(capsys, ["--data", "data.txt"], "a file ending in .csv or .npz")
    fails_with_one_line(
        capsys, ["--data", str(sep_csv), "--target", "label", "--noise-std", "0.1"], "regression only"
    )
    cnn = ["--nproc", "2", "--mode", "sample", "--data", str(sep_csv), "--target", "label", "--model", "cnn"]
    fails_with_one_line(capsys, cnn, "the CNN needs image data")
    with pytest.raises(InputError, match="unknown task"):
        BNNConfig(data=str(sep_csv), target="label", task="ranking").validate(1)


@pytest.mark.slow  # starts two ranks
@pytest.mark.distributed
@pytest.mark.timeout(300)
def test_two_processes_read_the_file_and_give_the_one_process_result(sep_csv: Path) -> None:
    cmd = [
        sys.executable,
        "-m",
        "hai.shared",
        "scale",
        "bnn-train",
        "--data",
        str(sep_csv),
        "--target",
        "label",
    ]
    cmd += ["--mode", "sample", "--epochs", "3", *SMALL, "--json"]
    env = dict(os.environ, OMP_NUM_THREADS="1")

    def run(nproc: str) -> dict[str, Any]:
        done = subprocess.run([*cmd, "--nproc", nproc], env=env, capture_output=True, text=True, timeout=240)
        assert done.returncode == 0, done.stderr
        data: dict[str, Any] = json.loads(done.stdout)
        return data

    one, two = run("1"), run("2")
    assert two["world_size"] == 2
    assert one["world_size"] == 1
    assert two["data"] == one["data"] == "sep.csv"
    assert two["accuracy"] > 0.9
    for a, b in zip(one["history"], two["history"], strict=True):
        assert b["train_loss"] == pytest.approx(a["train_loss"], rel=1e-5)
        assert b["test_nll"] == pytest.approx(a["test_nll"], rel=1e-4)
        assert b["test_accuracy"] == a["test_accuracy"]
