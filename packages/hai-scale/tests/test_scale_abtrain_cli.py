"""``hai scale ab-train`` end to end, and its bad inputs (one line, exit 2, nothing written)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hai.shared.cli import main

FAST = ["--data", "synthetic", "--hidden", "12", "--steps", "12", "--batch-size", "8"]
FAST += ["--warmup-steps", "3", "--sync-every", "4", "--ddp-steps", "1", "--rebound-steps", "1"]


@pytest.mark.distributed
@pytest.mark.timeout(300)
def test_ab_train_json_and_out_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "ab.json"
    assert main(["--quiet", "scale", "ab-train", "--nproc", "2", *FAST, "--json", "--out", str(out)]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["method"] == "ab"
    assert summary["identical_ranks"] is True
    assert 0.0 <= summary["test_accuracy"] <= 1.0
    saved = json.loads(out.read_text())
    assert saved["summary"] == summary
    assert len(saved["ranks"]) == 2
    assert saved["ranks"][0]["trace"][3]["events"] == ["svd"]


@pytest.mark.distributed
@pytest.mark.timeout(300)
def test_ab_train_checkpoint_holds_the_final_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import torch

    from hai.scale.abtrain.trainer import ABTrainConfig
    from hai.scale.models import mlp
    from hai.shared import load_checkpoint

    ckpt, out = tmp_path / "ab.safetensors", tmp_path / "ab.json"
    argv = ["--quiet", "scale", "ab-train", "--nproc", "2", *FAST, "--checkpoint", str(ckpt)]
    assert main([*argv, "--out", str(out), "--json"]) == 0
    capsys.readouterr()
    rank0 = json.loads(out.read_text())["ranks"][0]
    loaded = load_checkpoint(ckpt, framework="torch")
    assert loaded.extra["kind"] == "hai.scale.abtrain"
    config = ABTrainConfig.from_dict(loaded.config)
    assert config.steps == 12
    assert config.hidden == (12,)
    # the file holds the final full-rank model: it loads into a fresh MLP, scores the test
    # accuracy rank 0 reported and sums to rank 0's checksum
    assert sum(float(t.double().sum()) for t in loaded.tensors.values()) == pytest.approx(
        rank0["checksum"], rel=1e-9, abs=1e-9
    )
    from hai.scale.data import load_classification

    data = load_classification("synthetic", seed=config.split_seed)
    model = mlp(data.n_features, data.n_classes, config.hidden)
    model.load_state_dict(loaded.tensors)
    with torch.no_grad():
        accuracy = float((model(data.x_test).argmax(dim=1) == data.y_test).float().mean())
    assert accuracy == pytest.approx(rank0["test_accuracy"])


@pytest.mark.parametrize("where", ["folder", "under-a-file"])
def test_bad_checkpoint_path_fails_before_training(
    where: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "a_file").write_text("keep")
    target = tmp_path if where == "folder" else tmp_path / "a_file" / "ab.safetensors"
    argv = ["--quiet", "scale", "ab-train", "--nproc", "2", *FAST, "--checkpoint", str(target)]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "checkpoint" in err[0]
    assert (tmp_path / "a_file").read_text() == "keep"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--nproc", "0"], "--nproc"),
        (["--lr", "inf"], "--lr"),
        (["--cutoff", "1.5"], "--cutoff"),
        (["--hidden", ""], "--hidden"),
        (["--steps", "0"], "--steps"),
        (["--sync-mode", "only-b"], "--sync-mode"),
    ],
)
def test_bad_arguments_are_usage_errors(
    args: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "ab.json"
    with pytest.raises(SystemExit) as info:
        main(["--quiet", "scale", "ab-train", *FAST, *args, "--out", str(out)])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err
    assert not out.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--nproc", "2", "--group-size", "2"], "at least two groups"),
        (["--model", "cnn"], "needs image data"),
    ],
)
def test_impossible_setups_are_one_line_and_exit_2(
    args: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "ab.json"
    assert main(["--quiet", "scale", "ab-train", *FAST, *args, "--nproc", "2", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert message in err[0]
    assert not out.exists()


def test_out_folder_is_refused_before_training(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--quiet", "scale", "ab-train", *FAST, "--out", str(tmp_path)]) == 2
    assert "is a folder" in capsys.readouterr().err
