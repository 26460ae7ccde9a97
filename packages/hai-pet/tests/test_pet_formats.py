"""TTree and RNTuple alike, and every unreadable file as one InputError (issue 19.4).

uproot 5.7 writes an RNTuple for ``file["Singles"] = {...}``; GATE 9 writes TTrees. Both give
the same tables, the same sorted coincidences and the same ``hai pet sort`` output. A file that
is not ROOT, truncated, empty, a folder, without the tree or branches asked for, or declaring
sizes its content cannot have, is one :class:`InputError` from every reader and one line with
exit status 2 from every command.
"""

from __future__ import annotations

import pickle
import struct
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import uproot

from hai.pet import (
    GateTree,
    PETNet,
    PointSource,
    get_scanner,
    iterate_gate,
    read_gate,
    read_gate10_singles,
    read_singles,
    simulate,
    sort_coincidences,
    tree_names,
    write_gate,
)
from hai.shared import InputError
from hai.shared.cli import main


@pytest.fixture(scope="module")
def sim_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("formats")
    sim = simulate("safir", [PointSource(3e6)], seconds=2e-3, seed=5)
    files = {
        "ttree": write_gate(root / "ttree.root", sim.trees),
        "rntuple": write_gate(root / "rntuple.root", sim.trees, rntuple=True),
    }
    # what a plain uproot 5.7 user writes: an RNTuple, through file[name] = {...}
    with uproot.recreate(root / "plain.root") as fh:
        fh["Singles"] = {k: v for k, v in sim.singles.columns.items() if v.dtype.kind != "U"}
    files["plain"] = root / "plain.root"
    return files


def test_the_files_hold_what_they_claim(sim_files: dict[str, Path]) -> None:
    with uproot.open(sim_files["ttree"]) as fh:
        assert fh.classnames()["Singles;1"] == "TTree"
    for name in ("rntuple", "plain"):
        with uproot.open(sim_files[name]) as fh:
            assert fh.classnames()["Singles;1"] == "ROOT::RNTuple"
    assert sorted(tree_names(sim_files["rntuple"])) == ["Hits", "Singles"]


def test_rntuple_and_ttree_give_the_same_tables_and_sorted_output(sim_files: dict[str, Path]) -> None:
    tt = read_singles(sim_files["ttree"], progress_bar=False)
    rn = read_singles(sim_files["rntuple"], progress_bar=False)
    assert len(tt) > 100
    assert tt.equals(rn)  # every branch bit for bit, strings (comptVolName) included
    assert read_gate(sim_files["ttree"], "Hits", progress_bar=False).equals(
        read_gate(sim_files["rntuple"], "Hits", progress_bar=False)
    )
    plain = read_singles(sim_files["plain"], progress_bar=False)
    assert plain.equals(GateTree("Singles", {k: v for k, v in tt.columns.items() if v.dtype.kind != "U"}))
    chunks = list(
        iterate_gate(sim_files["rntuple"], "Singles", branches=["time"], step_size=50, progress_bar=False)
    )
    assert np.array_equal(np.concatenate([c["time"] for c in chunks]), tt["time"])
    settings = {"policy": "takeWinnerOfGoods", "energy_window_kev": (350, 650), "min_sector_difference": 2}
    a = sort_coincidences(tt, 4.0, sectors=16, **settings)  # type: ignore[arg-type]
    b = sort_coincidences(rn, 4.0, sectors=16, **settings)  # type: ignore[arg-type]
    assert len(a) > 10
    assert np.array_equal(a.pairs, b.pairs)
    assert a.coincidences.equals(b.coincidences)


def test_hai_pet_sort_writes_the_same_coincidences_from_both(
    sim_files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    outs = {}
    for name in ("ttree", "rntuple", "plain"):
        out = tmp_path / f"{name}.coinc.root"
        argv = ["pet", "sort", str(sim_files[name]), "--window-ns", "4", "--policy", "takeAllGoods"]
        assert main([*argv, "--preset", "safir", "--min-sector-difference", "2", "--out", str(out)]) == 0
        outs[name] = read_gate(out, "Coincidences", progress_bar=False)
    capsys.readouterr()
    assert len(outs["ttree"]) > 10
    assert outs["ttree"].equals(outs["rntuple"])
    common = [k for k in outs["ttree"] if k in outs["plain"]]
    assert len(common) > 20
    for k in common:
        assert np.array_equal(outs["ttree"][k], outs["plain"][k]), k


def test_gate10_singles_from_an_rntuple(tmp_path: Path) -> None:
    n = 6
    cols = {
        "EventID": np.array([0, 0, 1, 1, 2, 2]),
        "GlobalTime": np.arange(n) * 1.5,
        "PreStepUniqueVolumeID": np.array(["0_1", "0_7", "0_2", "0_8", "0_1", "0_7"]),
        "TotalEnergyDeposit": np.full(n, 0.511),
        "PostPosition_X": np.array([1.0, -1, 1, -1, 1, -1]) * 300,
        "PostPosition_Y": np.zeros(n),
        "PostPosition_Z": np.zeros(n),
    }
    tt = write_gate(tmp_path / "g10.root", [GateTree("Singles", cols)])
    rn = write_gate(tmp_path / "g10rn.root", [GateTree("Singles", cols)], rntuple=True)
    a, b = (
        read_gate10_singles(tt, sectors=4, progress_bar=False),
        read_gate10_singles(rn, sectors=4, progress_bar=False),
    )
    assert a.equals(b)
    assert a["time"].tolist() == pytest.approx((np.arange(n) * 1.5e-9).tolist())
    assert a["rsectorID"].tolist() == [0, 2, 0, 2, 0, 2]


# -- unreadable files ------------------------------------------------------------------------


def _huge_basket(good: Path, out: Path) -> Path:
    """The singles of ``good`` with their first basket declaring 2 GB of uncompressed data."""
    write_gate(out, [read_singles(good, progress_bar=False)])
    data = bytearray(out.read_bytes())
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
    out.write_bytes(bytes(data))
    return out


def bad_files(folder: Path, good: Path) -> dict[str, tuple[Path, str]]:
    """Unreadable files and a word of the error each must give."""
    data = good.read_bytes()
    folder.mkdir(exist_ok=True)
    (folder / "empty.root").write_bytes(b"")
    (folder / "text.root").write_text("time,energy\n0,0.511\n")
    (folder / "truncated.root").write_bytes(data[: len(data) // 2])
    (folder / "header-only.root").write_bytes(data[:100])
    (folder / "pickle.root").write_bytes(pickle.dumps({"time": [0.0]}))
    (folder / "a-folder.root").mkdir(exist_ok=True)
    with uproot.recreate(folder / "other-tree.root") as fh:
        fh.mktree("Events", {"x": np.float64})
        fh["Events"].extend({"x": np.arange(3.0)})
    with uproot.recreate(folder / "no-columns.root") as fh:
        fh.mktree("Singles", {"x": np.float64})
        fh["Singles"].extend({"x": np.arange(3.0)})
    with uproot.recreate(folder / "no-entries.root") as fh:
        fh.mktree("Singles", {k: np.float64 for k in ("eventID", "time", "energy", "rsectorID", "crystalID")})
    return {
        "empty": (folder / "empty.root", "empty (0 bytes)"),
        "text": (folder / "text.root", "not a readable ROOT file"),
        "truncated": (folder / "truncated.root", "not a readable ROOT file"),
        "header-only": (folder / "header-only.root", "not a readable ROOT file"),
        "pickle": (folder / "pickle.root", "not a readable ROOT file"),
        "folder": (folder / "a-folder.root", "is a folder"),
        "missing": (folder / "missing.root", "does not exist"),
        "other-tree": (folder / "other-tree.root", "singles"),
        "no-columns": (folder / "no-columns.root", "lacks required branch"),
        "no-entries": (folder / "no-entries.root", "empty (0 entries)"),
        "huge-basket": (_huge_basket(good, folder / "huge.root"), "of 2,147,483,"),
    }


@pytest.fixture(scope="module")
def unreadable(
    sim_files: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, tuple[Path, str]]:
    return bad_files(tmp_path_factory.mktemp("bad"), sim_files["ttree"])


READERS: dict[str, Callable[[Path], object]] = {
    "read_singles": lambda p: read_singles(p, progress_bar=False),
    "read_gate": lambda p: read_gate(p, "Singles", required=("time",), progress_bar=False),
    "iterate_gate": lambda p: list(iterate_gate(p, "Singles", required=("time",), progress_bar=False)),
    "read_gate10_singles": lambda p: read_gate10_singles(p, progress_bar=False),
}


@pytest.mark.parametrize("reader", sorted(READERS))
def test_every_reader_gives_one_input_error(unreadable: dict[str, tuple[Path, str]], reader: str) -> None:
    for name, (path, word) in unreadable.items():
        with pytest.raises(InputError) as info:
            READERS[reader](path)
        message = str(info.value)
        assert "\n" not in message, (name, message)
        if reader == "read_singles":
            assert word.lower() in message.lower(), (name, message)


def test_tree_names_of_unreadable_files(unreadable: dict[str, tuple[Path, str]]) -> None:
    for name in ("empty", "text", "header-only", "pickle", "folder", "missing"):  # a truncated file may list
        with pytest.raises(InputError):
            tree_names(unreadable[name][0])


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    scanner = get_scanner("safir")
    x = np.zeros((4, 10, scanner.n_crystals), dtype=np.float32)
    x[:, 2, [0, scanner.crystals_per_ring // 2]] = 1
    net = PETNet(
        scanner.n_crystals, local=True, hidden=4, crystals_per_ring=scanner.crystals_per_ring, epochs=1
    ).fit(x, x)
    return net.save(
        tmp_path_factory.mktemp("model") / "petnet.safetensors",
        metadata={"preset": "safir", "steps": 10, "bin_ns": 0.5},
    )


def test_every_command_gives_one_line_and_status_2(
    unreadable: dict[str, tuple[Path, str]], model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out.root"
    commands = {
        "sort": ["pet", "sort", "{}", "--window-ns", "4", "--policy", "killAll", "--out", str(out)],
        "train": [
            "pet",
            "train",
            "{}",
            "--preset",
            "safir",
            "--epochs",
            "1",
            "--out",
            str(tmp_path / "m.st"),
        ],
        "evaluate": [
            "pet",
            "evaluate",
            "{}",
            "--model",
            str(model),
            "--window-ns",
            "4",
            "--policy",
            "killAll",
        ],
    }
    for command, template in commands.items():
        for name, (path, word) in unreadable.items():
            argv = [str(path) if a == "{}" else a for a in template]
            assert main(argv) == 2, (command, name)
            err = capsys.readouterr().err.strip().splitlines()
            assert len(err) == 1, (command, name, err)
            assert err[0].startswith("hai: error:"), err
            assert word.lower() in err[0].lower(), (command, name, err[0])
    assert not out.exists()
    assert not (tmp_path / "m.st").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_rntuple_pages_that_declare_more_elements_than_entries_are_refused(
    sim_files: dict[str, Path],
) -> None:
    """An RNTuple page declares its element count (the reader allocates that many); the page
    list carries a checksum, so the crafted count is set on the parsed page list, as a file
    with a recomputed checksum would give it."""
    from hai.pet.gate_io import _check_declared_sizes

    with uproot.open(sim_files["rntuple"]) as fh:
        handle = fh["Singles"]
        _check_declared_sizes(handle, ["time", "energy", "comptVolName"], sim_files["rntuple"])  # honest
        field = next(i for i, f in enumerate(handle.field_records) if f.field_name == "energy")
        column = next(c.idx for c in handle.column_records if c.field_id == field)
        page = handle.page_link_list[0][column].pages[0]
        page.num_elements = 1 << 40
        with pytest.raises(InputError, match="declares pages of field 'energy'"):
            _check_declared_sizes(handle, ["time", "energy"], sim_files["rntuple"])
        _check_declared_sizes(handle, ["time"], sim_files["rntuple"])  # a field not read is not checked
