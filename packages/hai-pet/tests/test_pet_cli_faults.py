"""`hai pet` under bad arguments, corrupt or foreign checkpoints and failed writes (issue 20).

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
import pytest
import torch

from hai.pet import PETNet, PointSource, get_scanner, simulate, write_gate
from hai.shared import save_checkpoint
from hai.shared.cli import main

OLD = b"old content that must survive " * 8


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("pet-faults")
    sim = simulate("safir", [PointSource(3e6)], seconds=1e-3, seed=2)
    scanner = get_scanner("safir")
    x = np.zeros((4, 10, scanner.n_crystals), dtype=np.float32)
    x[:, 2, [0, scanner.crystals_per_ring // 2]] = 1
    net = PETNet(
        scanner.n_crystals, local=True, hidden=4, crystals_per_ring=scanner.crystals_per_ring, epochs=1
    ).fit(x, x)
    paths = {
        "singles": write_gate(root / "singles.root", sim.trees),
        "model": net.save(
            root / "petnet.safetensors", metadata={"preset": "safir", "steps": 10, "bin_ns": 0.5}
        ),
    }
    state = net.module_.state_dict()
    config = net.get_params()
    extra = {"history": [], "metadata": {"preset": "safir", "steps": 10, "bin_ns": 0.5}, "pos_weight": 1.0}
    # a forecast checkpoint (ReCycle-like config), a config without n_channels, a checkpoint
    # without its encoding, wrong shapes and dtypes, NaN weights, a too-small network for the scanner
    paths["forecast"] = save_checkpoint(
        root / "forecast.safetensors",
        {"proj.weight": torch.zeros(8, 8)},
        config={"model": "recycle", "freq_ns": 3_600_000_000_000, "cycle_length": 24},
    )
    paths["no-n-channels"] = save_checkpoint(
        root / "no-n.safetensors",
        state,
        config={k: v for k, v in config.items() if k != "n_channels"},
        extra=extra,
    )
    paths["no-encoding"] = save_checkpoint(
        root / "no-enc.safetensors", state, config=config, extra={"history": []}
    )
    wrong = dict(state)
    wrong["fcs.0.weight"] = torch.zeros(5, 3)
    paths["wrong-shape"] = save_checkpoint(root / "shape.safetensors", wrong, config=config, extra=extra)
    wrong = dict(state)
    wrong["fcs.0.weight"] = state["fcs.0.weight"].to(torch.float64)
    paths["wrong-dtype"] = save_checkpoint(root / "dtype.safetensors", wrong, config=config, extra=extra)
    wrong = dict(state)
    wrong["fcs.1.bias"] = torch.full_like(state["fcs.1.bias"], float("nan"))
    paths["nan-weights"] = save_checkpoint(root / "nan.safetensors", wrong, config=config, extra=extra)
    small = PETNet(12, local=True, hidden=4, crystals_per_ring=12, epochs=1).fit(x[:, :, :12], x[:, :, :12])
    paths["other-scanner"] = small.save(root / "small.safetensors", metadata=extra["metadata"])
    paths["bad-config"] = save_checkpoint(
        root / "badcfg.safetensors", state, config={**config, "epochs": -3}, extra=extra
    )
    paths["bad-preset"] = save_checkpoint(
        root / "badpreset.safetensors",
        state,
        config=config,
        extra={**extra, "metadata": {**extra["metadata"], "preset": "x"}},
    )
    paths["truncated"] = root / "truncated.safetensors"
    paths["truncated"].write_bytes(paths["model"].read_bytes()[:200])
    paths["text"] = root / "text.safetensors"
    paths["text"].write_text("not a checkpoint")
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


def evaluate(files: dict[str, Path], model: Path) -> list[str]:
    return [
        "pet",
        "evaluate",
        str(files["singles"]),
        "--model",
        str(model),
        "--window-ns",
        "4",
        "--policy",
        "killAll",
    ]


@pytest.mark.parametrize(
    ("name", "match"),
    [
        ("forecast", "not a PETNet checkpoint (its config has 'cycle_length', 'freq_ns', 'model')"),
        ("no-n-channels", "not a PETNet checkpoint (no n_channels)"),
        ("no-encoding", "does not record its spike encoding"),
        ("wrong-shape", "tensor 'fcs.0.weight' is of shape [5, 3], expected [4, 3]"),
        ("wrong-dtype", "tensor 'fcs.0.weight' is torch.float64"),
        ("nan-weights", "NaN or infinite"),
        ("other-scanner", "has 12 input channels, its scanner 'safir' 1280 crystals"),
        ("bad-config", "invalid PETNet config: epochs must be a positive integer"),
        ("bad-preset", "unusable spike encoding"),
        ("truncated", "not a readable safetensors checkpoint"),
        ("text", "not a readable safetensors checkpoint"),
    ],
)
def test_corrupt_or_foreign_checkpoints(
    capsys: pytest.CaptureFixture[str], files: dict[str, Path], tmp_path: Path, name: str, match: str
) -> None:
    plot = tmp_path / "f1.png"
    fails_with_one_line(capsys, [*evaluate(files, files[name]), "--plot", str(plot)], match)
    assert not plot.exists()
    no_temporary_files(tmp_path)


def test_the_good_checkpoint_evaluates(capsys: pytest.CaptureFixture[str], files: dict[str, Path]) -> None:
    assert main([*evaluate(files, files["model"]), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert set(data["methods"]) == {"PETNet", "killAll", "SCW"}


def simulate_argv(out: Path) -> list[str]:
    return ["pet", "simulate", "--preset", "safir", "--seconds", "0.0005", "--out", str(out)]


def sort_argv(files: dict[str, Path], out: Path) -> list[str]:
    return [
        "pet",
        "sort",
        str(files["singles"]),
        "--window-ns",
        "4",
        "--policy",
        "killAll",
        "--out",
        str(out),
    ]


def train_argv(files: dict[str, Path], out: Path) -> list[str]:
    return [
        "pet", "train", str(files["singles"]), "--preset", "safir", "--steps", "10", "--local",
        "--hidden", "4", "--epochs", "1", "--out", str(out),
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("command", "flag", "value"),
    [
        ("simulate", "--seconds", "-1"),
        ("simulate", "--seconds", "nan"),
        ("simulate", "--activity-mbq", "-2"),
        ("simulate", "--activity-mbq", "inf"),
        ("simulate", "--seed", "-1"),
        ("sort", "--window-ns", "0"),
        ("sort", "--offset-ns", "-1"),
        ("sort", "--min-sector-difference", "-1"),
        ("sort", "--sectors", "0"),
        ("sort", "--energy-window-kev", "-5"),
        ("train", "--epochs", "0"),
        ("train", "--batch-size", "0"),
        ("train", "--steps", "0"),
        ("train", "--bin-ns", "-0.5"),
        ("train", "--hidden", "0"),
        ("train", "--lr", "0"),
        ("train", "--fan", "-1"),
        ("train", "--timing-weight", "nan"),
        ("evaluate", "--window-ns", "nan"),
        ("evaluate", "--tolerance-steps", "-1"),
        ("evaluate", "--min-sector-difference", "x"),
    ],
)
def test_unchecked_numbers_are_checked(
    capsys: pytest.CaptureFixture[str],
    files: dict[str, Path],
    tmp_path: Path,
    command: str,
    flag: str,
    value: str,
) -> None:
    out = tmp_path / "out"
    argv = {
        "simulate": simulate_argv(out),
        "sort": sort_argv(files, out),
        "train": train_argv(files, out),
        "evaluate": evaluate(files, files["model"]),
    }[command]
    extra = [flag, value, value] if flag == "--energy-window-kev" else [flag, value]
    fails_with_one_line(capsys, [*argv, *extra], flag)
    assert not out.exists()


def test_output_paths_that_are_folders_or_under_files(
    capsys: pytest.CaptureFixture[str], files: dict[str, Path], tmp_path: Path
) -> None:
    folder = tmp_path / "folder"
    folder.mkdir()
    a_file = tmp_path / "a-file"
    a_file.write_bytes(OLD)
    for make in (simulate_argv, lambda o: sort_argv(files, o), lambda o: train_argv(files, o)):
        fails_with_one_line(capsys, make(folder), "is a folder")
        fails_with_one_line(capsys, make(a_file / "x.root"), "is a file, not a folder")
    fails_with_one_line(capsys, [*evaluate(files, files["model"]), "--plot", str(folder)], "is a folder")
    assert a_file.read_bytes() == OLD
    assert list(folder.iterdir()) == []
    no_temporary_files(tmp_path)


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
    old = {name: tmp_path / name for name in ("sim.root", "coinc.root", "model.safetensors", "f1.png")}
    for path in old.values():
        path.write_bytes(OLD)
    runs = [
        simulate_argv(old["sim.root"]),
        sort_argv(files, old["coinc.root"]),
        train_argv(files, old["model.safetensors"]),
        [*evaluate(files, files["model"]), "--plot", str(old["f1.png"])],
    ]
    env = {**os.environ, "MPLCONFIGDIR": str(tmp_path / "mpl"), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(runs)],
        capture_output=True,
        text=True,
        timeout=180,
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
        assert path.read_bytes() == OLD, path
    no_temporary_files(tmp_path)
