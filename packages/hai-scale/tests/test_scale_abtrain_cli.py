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
