"""`hai forecast` under bad arguments, bad files and failed writes (issue 20, issue 22's CLI cases).

Every case ends with exit status 2 and one line on standard error, and writes nothing: an
existing output file keeps its content and no temporary file is left beside it. Failed writes
run in a child process under a file size limit (``ulimit -f``; Python ignores SIGXFSZ, so the
write fails with EFBIG).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hai.forecast import LastProfile, ReCycle, save_model, synthetic_cyclic
from hai.shared.cli import main

TINY = ["--epochs", "1", "--d-model", "8", "--dim-feedforward", "8"]


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("forecast-faults")
    y = synthetic_cyclic(n_cycles=30, seed=2)
    paths = {
        "csv": root / "load.csv",
        "baseline": root / "lp.safetensors",
        "recycle": root / "rc.safetensors",
    }
    y.to_csv(paths["csv"], index_label="time")
    save_model(LastProfile().fit(y), paths["baseline"])
    save_model(ReCycle(epochs=1, d_model=8, dim_feedforward=8).fit(y), paths["recycle"])
    return paths


def fails_with_one_line(capsys: pytest.CaptureFixture[str], argv: list[str], match: str) -> str:
    """Run ``hai`` in-process: exit status 2, one line on stderr that contains ``match``."""
    try:
        status = main(argv)
    except SystemExit as exc:  # argparse's usage errors
        status = int(exc.code or 0)
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2, err
    assert len(err) == 1, err
    assert match.lower() in err[0].lower(), err[0]
    return err[0]


def no_temporary_files(folder: Path) -> None:
    assert not [p.name for p in folder.iterdir() if p.name.endswith(".tmp")]


@pytest.mark.parametrize(
    ("flag", "value", "match"),
    [
        ("--cycle-length", "0", "--cycle-length"),
        ("--epochs", "0", "--epochs"),
        ("--epochs", "100000000000", "--epochs"),
        ("--batch-size", "0", "--batch-size"),
        ("--history-cycles", "-1", "--history-cycles"),
        ("--d-model", "x", "--d-model"),
        ("--lr", "nan", "--lr"),
        ("--lr", "0", "--lr"),
        ("--seed", "-1", "--seed"),
        ("--threads", "-2", "--threads"),
        ("--test-fraction", "1.5", "test-fraction"),
        ("--test-fraction", "-0.5", "test-fraction"),
        ("--test-fraction", "nan", "test-fraction"),
        ("--test-fraction", "0", "test-fraction"),  # a backtest needs test days
    ],
)
def test_backtest_refuses_bad_numbers(
    capsys: pytest.CaptureFixture[str], files: dict[str, Path], flag: str, value: str, match: str
) -> None:
    fails_with_one_line(
        capsys, ["forecast", "backtest", "--data", str(files["csv"]), *TINY, flag, value], match
    )


@pytest.mark.parametrize("value", ["1.5", "-0.5", "nan", "1"])
def test_train_refuses_bad_test_fraction_and_writes_nothing(
    capsys: pytest.CaptureFixture[str], files: dict[str, Path], tmp_path: Path, value: str
) -> None:
    out = tmp_path / "m.safetensors"
    argv = ["forecast", "train", "--data", str(files["csv"]), *TINY, "--out", str(out)]
    fails_with_one_line(capsys, [*argv, "--test-fraction", value], "--test-fraction")
    assert not out.exists()


def test_train_test_fraction_zero_trains_on_everything(
    capsys: pytest.CaptureFixture[str], files: dict[str, Path], tmp_path: Path
) -> None:
    argv = [
        "forecast",
        "train",
        "--model",
        "last_profile",
        "--data",
        str(files["csv"]),
        "--test-fraction",
        "0",
    ]
    assert main([*argv, "--out", str(tmp_path / "m.safetensors"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["train_steps"] == 30 * 24


def test_no_command_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["forecast"]) == 2
    assert "a command is needed" in capsys.readouterr().err


def test_csv_cell_that_is_not_a_number_is_named(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    frame = synthetic_cyclic(n_cycles=30).to_frame("load")
    frame["temp"] = np.linspace(0.0, 10.0, len(frame))
    text = frame.astype(object)
    text.iloc[100, 0] = "n/a!"
    bad = tmp_path / "bad.csv"
    text.to_csv(bad, index_label="time")
    line = fails_with_one_line(
        capsys, ["forecast", "backtest", "--model", "last_profile", "--data", str(bad)], "'load'"
    )
    assert "row 101" in line
    assert "line 102" in line
    assert "'n/a!'" in line
    # choosing the clean column works, and the other column is then no second target
    assert (
        main(
            [
                "forecast",
                "backtest",
                "--model",
                "last_profile",
                "--data",
                str(bad),
                "--value-column",
                "temp",
                "--json",
            ]
        )
        == 0
    )
    assert json.loads(capsys.readouterr().out)["columns"] == ["temp"]


def test_values_that_overflow_are_refused(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    huge = tmp_path / "huge.csv"
    (synthetic_cyclic(n_cycles=30) * 1e306).to_csv(huge, index_label="time")
    for argv in (
        ["forecast", "backtest", "--model", "seasonal_naive", "--data", str(huge)],
        ["forecast", "backtest", "--data", str(huge), *TINY],
    ):
        fails_with_one_line(capsys, argv, "values as large as")


def test_offset_timestamps_across_daylight_saving_time(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    index = pd.date_range("2024-03-20", periods=30 * 24, freq="h", tz="Europe/Berlin")
    path = tmp_path / "dst.csv"
    pd.Series(synthetic_cyclic(n_cycles=30).to_numpy(), index=index).to_csv(path, index_label="time")
    assert "+02:00" in path.read_text()
    assert "+01:00" in path.read_text()
    argv = ["forecast", "backtest", "--model", "last_profile", "--data", str(path), "--json"]
    assert main(argv) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["first_origin"].endswith("+00:00")  # read as UTC
    assert main([*argv, "--tz", "Europe/Berlin"]) == 0
    assert json.loads(capsys.readouterr().out)["first_origin"].endswith(("+01:00", "+02:00"))
    fails_with_one_line(capsys, [*argv, "--tz", "Mars/Olympus"], "time zone")


def test_non_midnight_origin_is_refused_by_the_networks(
    capsys: pytest.CaptureFixture[str], files: dict[str, Path], tmp_path: Path
) -> None:
    shifted = tmp_path / "shifted.csv"
    synthetic_cyclic(n_cycles=30, seed=2).iloc[:-5].to_csv(shifted, index_label="time")
    line = fails_with_one_line(
        capsys,
        ["forecast", "predict", "--checkpoint", str(files["recycle"]), "--data", str(shifted)],
        "start of a cycle",
    )
    assert "drop its last 19" in line
    # a baseline forecasts from any time of day
    assert main(["forecast", "predict", "--checkpoint", str(files["baseline"]), "--data", str(shifted)]) == 0


@pytest.mark.parametrize("flag", ["--out", "--plot"])
def test_predict_output_that_is_a_folder(
    capsys: pytest.CaptureFixture[str], files: dict[str, Path], tmp_path: Path, flag: str
) -> None:
    argv = ["forecast", "predict", "--checkpoint", str(files["baseline"]), "--data", str(files["csv"])]
    fails_with_one_line(capsys, [*argv, flag, str(tmp_path)], "it is a folder")
    no_temporary_files(tmp_path)


def test_outputs_under_a_file_or_of_an_unknown_format(
    capsys: pytest.CaptureFixture[str], files: dict[str, Path], tmp_path: Path
) -> None:
    data = ["--data", str(files["csv"])]
    fails_with_one_line(
        capsys,
        ["forecast", "backtest", "--model", "last_profile", *data, "--out", str(files["csv"])],
        "not a folder",
    )
    fails_with_one_line(capsys, ["forecast", "train", *data, *TINY, "--out", str(tmp_path)], "it is a folder")
    fails_with_one_line(
        capsys,
        [
            "forecast",
            "predict",
            "--checkpoint",
            str(files["baseline"]),
            *data,
            "--plot",
            str(tmp_path / "f.xyz"),
        ],
        "format",
    )


def test_quantiles_need_a_quantile_model(
    capsys: pytest.CaptureFixture[str], files: dict[str, Path], tmp_path: Path
) -> None:
    argv = ["forecast", "predict", "--data", str(files["csv"]), "--quantiles"]
    fails_with_one_line(capsys, [*argv, "--checkpoint", str(files["recycle"])], "--loss quantile")
    ckpt = tmp_path / "q.safetensors"
    train = [
        "forecast",
        "train",
        "--data",
        str(files["csv"]),
        *TINY,
        "--loss",
        "quantile",
        "--out",
        str(ckpt),
    ]
    assert main(train) == 0
    capsys.readouterr()
    out = tmp_path / "q.csv"
    assert main([*argv, "--checkpoint", str(ckpt), "--out", str(out), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert set(data["quantiles"]) == {"q0.1", "q0.5", "q0.9"}
    frame = pd.read_csv(out, index_col="time")
    assert list(frame.columns) == ["forecast", "baseline", "q0.1", "q0.5", "q0.9"]
    assert (frame["q0.1"] <= frame["q0.9"]).all()
    np.testing.assert_allclose(frame["q0.5"], frame["forecast"])


# -- failed writes under a file size limit ----------------------------------------------------

CHILD = textwrap.dedent(
    """
    import contextlib, io, json, resource, sys
    from hai.shared.cli import main
    import matplotlib.font_manager  # builds its font cache before the limit (not what is tested)
    resource.setrlimit(resource.RLIMIT_FSIZE, (64, resource.RLIM_INFINITY))
    results = []
    for argv in json.loads(sys.argv[1]):
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            status = main(argv)
        results.append({"status": status, "err": err.getvalue()})
    print(json.dumps(results))
    """
)


def test_failed_writes_keep_the_old_files(files: dict[str, Path], tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    old = {name: tmp_path / name for name in ("pred.csv", "pred.png", "model.safetensors")}
    report = tmp_path / "report"
    report.mkdir()
    old["backtest.json"] = report / "backtest.json"
    for path in old.values():
        path.write_bytes(b"old content that must survive " * 8)
    data = ["--data", str(files["csv"])]
    predict = ["forecast", "predict", "--checkpoint", str(files["baseline"]), *data]
    runs = [
        [*predict, "--out", str(old["pred.csv"])],
        [*predict, "--plot", str(old["pred.png"])],
        ["forecast", "train", "--model", "last_profile", *data, "--out", str(old["model.safetensors"])],
        ["forecast", "backtest", "--model", "last_profile", *data, "--out", str(report)],
    ]
    env = {**os.environ, "MPLCONFIGDIR": str(tmp_path / "mpl")}
    done = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(runs)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    for argv, result in zip(runs, json.loads(done.stdout.splitlines()[-1]), strict=True):
        lines = result["err"].strip().splitlines()
        assert result["status"] == 2, (argv, lines)
        assert len(lines) == 1, lines
        assert "ulimit -f" in lines[0]
    for path in old.values():
        assert path.read_bytes() == b"old content that must survive " * 8, path
    no_temporary_files(tmp_path)
    no_temporary_files(report)
    assert not (report / "backtest.png").exists()
