"""Crafted files through hai-forecast's loaders and commands (issue 12): nothing runs, errors are clear.

Every file a forecaster is loaded from goes through ``hai.forecast.load_model`` (the API) and
``hai forecast predict --checkpoint`` (the CLI). The crafted files are pickles and torch zip
files under a .safetensors name, safetensors with huge declared sizes, and real hai-forecast
checkpoints whose metadata was edited to name a foreign class, smuggle parameters, claim a huge
network or carry weights of the wrong shape or dtype. Each must give a CheckpointError (exit
status 2 and one line on the CLI), leave no marker file (nothing was unpickled or executed) and
write nothing.
"""

from __future__ import annotations

import json
import pickle
import struct
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from hai.forecast import LastProfile, ReCycle, load_model, save_model, synthetic_cyclic
from hai.shared import CheckpointError
from hai.shared.cli import main


class _Payload:
    """Unpickling this would write a marker file: the tests check that it never appears."""

    marker: Path

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.write_text, (self.marker, "pwned"))


@pytest.fixture(scope="module")
def real(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("forecast-security")
    y = synthetic_cyclic(n_cycles=30, seed=4)
    paths = {
        "csv": root / "load.csv",
        "recycle": root / "rc.safetensors",
        "baseline": root / "lp.safetensors",
    }
    y.to_csv(paths["csv"], index_label="time")
    save_model(ReCycle(epochs=1, d_model=8, dim_feedforward=8).fit(y), paths["recycle"])
    save_model(LastProfile().fit(y), paths["baseline"])
    return paths


def _read(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    with safe_open(str(path), framework="pt") as f:
        tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open has no __iter__)
        meta = json.loads((f.metadata() or {})["hai"])
    return tensors, meta


def _rewrite(source: Path, target: Path, edit: Any) -> Path:
    """Copy a real checkpoint to ``target`` after ``edit(tensors, meta)`` changed it in place."""
    tensors, meta = _read(source)
    edit(tensors, meta)
    save_file(tensors, str(target), metadata={"hai": json.dumps(meta)})
    return target


def _raw_safetensors(header: dict[str, Any], body: bytes = b"") -> bytes:
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + body


def _set_model(name: str) -> Any:
    def edit(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
        meta["config"]["model"] = name

    return edit


def _set_param(key: str, value: Any) -> Any:
    def edit(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
        meta["config"]["params"][key] = value

    return edit


def _first_weight(change: Any) -> Any:
    def edit(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
        name = next(k for k in tensors if k.startswith("net.") and k.endswith("weight"))
        tensors[name] = change(tensors[name])

    return edit


def _crafted(tmp_path: Path, real: dict[str, Path]) -> dict[str, Path]:
    payload = _Payload()
    payload.marker = tmp_path / "marker"
    raw = {
        "pickle": pickle.dumps(payload),
        "torch-zip": b"PK\x03\x04" + pickle.dumps(payload),
        "empty": b"",
        "huge-header": struct.pack("<Q", 2**62) + b"{}",
        "huge-shape": _raw_safetensors(
            {"w": {"dtype": "F32", "shape": [10**12], "data_offsets": [0, 4 * 10**12]}}
        ),
        "text": b"time,load\n2024-01-01,1\n",
    }
    files = {}
    for name, data in raw.items():
        files[name] = tmp_path / f"{name}.safetensors"
        files[name].write_bytes(data)
    rc, lp = real["recycle"], real["baseline"]
    edits = {
        "foreign-class": (lp, _set_model("os.system")),
        "dotted-class": (rc, _set_model("builtins.eval")),
        "smuggled-param": (lp, _set_param("__class__", "os.system")),
        "huge-network": (rc, _set_param("d_model", 2**31)),
        "negative-size": (rc, _set_param("d_model", -8)),
        "weight-wrong-shape": (rc, _first_weight(lambda w: torch.zeros(w.shape[0] + 1, *w.shape[1:]))),
        "weight-wrong-dtype": (rc, _first_weight(lambda w: w.to(torch.float64))),
        "weight-nan": (rc, _first_weight(lambda w: torch.full_like(w, float("nan")))),
    }
    for name, (source, edit) in edits.items():
        files[name] = _rewrite(source, tmp_path / f"{name}.safetensors", edit)
    return files


def test_the_real_checkpoints_load(real: dict[str, Path]) -> None:
    # the crafted files below are edits of these: they must be fine before the edit
    assert isinstance(load_model(real["recycle"]), ReCycle)
    assert isinstance(load_model(real["baseline"]), LastProfile)


def test_crafted_checkpoints_are_refused_by_the_api(tmp_path: Path, real: dict[str, Path]) -> None:
    refused = []
    for name, path in _crafted(tmp_path, real).items():
        with pytest.raises(CheckpointError) as info:
            load_model(path)
        assert "\n" not in str(info.value), name
        refused.append(name)
    assert len(refused) == 14
    assert not (tmp_path / "marker").exists()


def test_crafted_checkpoints_are_refused_by_the_cli(
    tmp_path: Path, real: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "pred.csv"
    out.write_text("keep")
    for name, path in _crafted(tmp_path, real).items():
        argv = ["forecast", "predict", "--checkpoint", str(path), "--data", str(real["csv"])]
        argv += ["--out", str(out)]
        assert main(argv) == 2, name
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1, (name, err)
        assert err[0].startswith("hai: error: "), (name, err)
        assert "Traceback" not in err[0]
    assert out.read_text() == "keep"
    assert not (tmp_path / "marker").exists()
    assert not [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
