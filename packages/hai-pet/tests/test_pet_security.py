"""Crafted files through every public loader and command of hai-pet (issue 12).

Pickles disguised as checkpoints or ROOT files (with a ``__reduce__`` that would create a
marker file when unpickled), safetensors files with wrong shapes, dtypes or absurd headers, and
ROOT files with huge declared sizes or garbage: each gives a clear error (exit status 2 and one
line from the command), nothing in the file is executed (the marker never appears) and nothing
is written.
"""

from __future__ import annotations

import json
import pickle
import struct
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from hai.pet import (
    PETNet,
    PointSource,
    get_scanner,
    iterate_gate,
    read_gate,
    read_gate10_singles,
    read_singles,
    simulate,
    tree_names,
    write_gate,
)
from hai.shared import HaiError
from hai.shared.cli import main


class MakesMarker:
    """Unpickling this creates the file ``path`` (what an attacker's payload would do)."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (self.path, "w"))


def _safetensors(header: dict[str, object], data: bytes = b"", *, declared_len: int | None = None) -> bytes:
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text) if declared_len is None else declared_len) + text + data


@pytest.fixture(scope="module")
def crafted(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("crafted")
    marker = root / "MARKER"
    files: dict[str, Path] = {"marker": marker}
    sim = simulate("safir", [PointSource(3e6)], seconds=1e-3, seed=4)
    files["singles"] = write_gate(root / "singles.root", [sim.singles])
    scanner = get_scanner("safir")
    x = np.zeros((4, 10, scanner.n_crystals), dtype=np.float32)
    x[:, 2, [0, scanner.crystals_per_ring // 2]] = 1
    net = PETNet(
        scanner.n_crystals, local=True, hidden=4, crystals_per_ring=scanner.crystals_per_ring, epochs=1
    ).fit(x, x)
    files["model"] = net.save(
        root / "model.safetensors", metadata={"preset": "safir", "steps": 10, "bin_ns": 0.5}
    )

    # pickles disguised as checkpoints and as ROOT files
    payload = {"fcs.0.weight": MakesMarker(marker)}
    (root / "pickle.safetensors").write_bytes(pickle.dumps(payload))
    torch.save(payload, root / "torch-zip.safetensors")  # torch's zip format, still a pickle inside
    (root / "pickle.root").write_bytes(pickle.dumps(payload))
    files.update(
        {
            "pickle-checkpoint": root / "pickle.safetensors",
            "torch-checkpoint": root / "torch-zip.safetensors",
            "pickle-root": root / "pickle.root",
        }
    )
    # safetensors with absurd headers, wrong shapes and dtypes
    meta = json.loads(
        __import__("safetensors").safe_open(str(files["model"]), framework="pt").metadata()["hai"]
    )
    hai_meta = {"__metadata__": {"hai": json.dumps(meta)}}
    (root / "huge-header.safetensors").write_bytes(_safetensors(hai_meta, declared_len=1 << 40))
    (root / "huge-shape.safetensors").write_bytes(
        _safetensors(
            {**hai_meta, "geometry": {"dtype": "F32", "shape": [1 << 20, 1 << 20], "data_offsets": [0, 16]}},
            b"\0" * 16,
        )
    )
    state = {k: v.clone() for k, v in net.module_.state_dict().items()}
    state["fcs.0.weight"] = torch.zeros(3, 4)  # transposed
    files["wrong-shape"] = _save_raw(root / "wrong-shape.safetensors", state, meta)
    state = {k: v.clone() for k, v in net.module_.state_dict().items()}
    state["geometry"] = state["geometry"].to(torch.int64)
    files["wrong-dtype"] = _save_raw(root / "wrong-dtype.safetensors", state, meta)
    grown = dict(meta, config={**meta["config"], "n_channels": 10**7})  # a config asking for 10^14 weights
    files["huge-config"] = _save_raw(root / "huge-config.safetensors", net.module_.state_dict(), grown)
    files["huge-header"] = root / "huge-header.safetensors"
    files["huge-shape"] = root / "huge-shape.safetensors"
    # ROOT files with huge declared sizes and garbage
    data = bytearray(files["singles"].read_bytes())
    at = data.index(b"\x07TBasket")
    # the key before the class name: 26 bytes (fVersion < 1000) or 34 (64-bit seeks, fVersion > 1000);
    # the right one is where the key's own fSeekKey (at byte 18) points back to its start. (Reading
    # only fVersion picked the wrong one on some dates: fDatime's bytes sit where the other would be.)
    start = next(
        at - off
        for off, seek in ((26, ">i"), (34, ">q"))
        if (struct.unpack(">h", data[at - off + 4 : at - off + 6])[0] > 1000) == (off == 34)
        and struct.unpack(seek, data[at - off + 18 : at - off + 18 + struct.calcsize(seek)])[0] == at - off
    )
    assert struct.unpack(">i", data[start + 6 : start + 10])[0] < 100_000  # the real fObjlen
    data[start + 6 : start + 10] = struct.pack(">i", 0x7FFF_FFF0)
    (root / "huge-basket.root").write_bytes(bytes(data))
    files["huge-basket"] = root / "huge-basket.root"
    rng = np.random.default_rng(0)
    (root / "garbage.root").write_bytes(b"root" + rng.bytes(4000))
    files["garbage"] = root / "garbage.root"
    return files


def _save_raw(path: Path, tensors: dict[str, torch.Tensor], header: dict[str, object]) -> Path:
    from safetensors.torch import save

    path.write_bytes(
        save({k: v.contiguous() for k, v in tensors.items()}, metadata={"hai": json.dumps(header)})
    )
    return path


CHECKPOINTS = (
    "pickle-checkpoint",
    "torch-checkpoint",
    "huge-header",
    "huge-shape",
    "wrong-shape",
    "wrong-dtype",
    "huge-config",
)
ROOT_FILES = ("pickle-root", "huge-basket", "garbage", "pickle-checkpoint", "torch-checkpoint")

ROOT_LOADERS: dict[str, Callable[[Path], object]] = {
    "read_singles": lambda p: read_singles(p, progress_bar=False),
    "read_gate": lambda p: read_gate(p, "Singles", progress_bar=False),
    "iterate_gate": lambda p: list(iterate_gate(p, "Singles", progress_bar=False)),
    "read_gate10_singles": lambda p: read_gate10_singles(p, progress_bar=False),
}


def _outputs(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


@pytest.mark.parametrize("name", CHECKPOINTS)
def test_crafted_checkpoints_through_petnet_load(crafted: dict[str, Path], name: str) -> None:
    assert crafted[name].is_file()
    with pytest.raises(HaiError) as info:
        PETNet.load(crafted[name])
    assert "\n" not in str(info.value)
    assert "does not exist" not in str(info.value)
    assert not crafted["marker"].exists()


@pytest.mark.parametrize("name", ROOT_FILES)
@pytest.mark.parametrize("loader", sorted(ROOT_LOADERS))
def test_crafted_root_files_through_every_reader(crafted: dict[str, Path], name: str, loader: str) -> None:
    assert crafted[name].is_file()
    with pytest.raises(HaiError) as info:
        ROOT_LOADERS[loader](crafted[name])
    assert "\n" not in str(info.value)
    assert "does not exist" not in str(info.value)
    if name == "huge-basket" and loader != "read_gate10_singles":  # that one needs GATE 10 names
        assert "declares a basket of branch 'runID' of 2,147,483," in str(info.value)
    assert not crafted["marker"].exists()


def test_tree_names_of_crafted_files(crafted: dict[str, Path]) -> None:
    for name in ("pickle-root", "garbage", "pickle-checkpoint", "torch-checkpoint"):
        with pytest.raises(HaiError):
            tree_names(crafted[name])
    assert not crafted["marker"].exists()


def test_crafted_files_through_every_command(
    crafted: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    runs: list[list[str]] = []
    for name in ROOT_FILES:
        f = str(crafted[name])
        runs += [
            ["pet", "sort", f, "--window-ns", "4", "--policy", "killAll", "--out", str(out / "c.root")],
            ["pet", "train", f, "--preset", "safir", "--epochs", "1", "--out", str(out / "m.safetensors")],
            ["pet", "evaluate", f, "--model", str(crafted["model"]), "--window-ns", "4",
             "--policy", "killAll", "--plot", str(out / "f1.png")],
        ]  # fmt: skip
    for name in CHECKPOINTS:
        runs.append(
            ["pet", "evaluate", str(crafted["singles"]), "--model", str(crafted[name]), "--window-ns", "4",
             "--policy", "killAll", "--plot", str(out / "f1.png")]
        )  # fmt: skip
    for argv in runs:
        assert all(Path(a).is_file() for a in argv if a.startswith(str(crafted["marker"].parent)))
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1, (argv, err)
        assert err[0].startswith("hai: error:"), err
        assert not crafted["marker"].exists(), argv
    assert _outputs(out) == []
