"""GATE ROOT I/O: lossless round trips, chunked reading, GATE 10 names, clear errors."""

from __future__ import annotations

from pathlib import Path

import awkward as ak
import numpy as np
import pytest
import uproot

from hai.pet import (
    CylinderSource,
    GateTree,
    iterate_gate,
    read_gate,
    read_singles,
    simulate,
    sort_coincidences,
    tree_names,
    write_gate,
)
from hai.shared import InputError


@pytest.fixture(scope="module")
def sim_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, GateTree]]:
    sim = simulate("safir", [CylinderSource(2e7, radius_mm=15, length_mm=10)], seconds=1e-3, seed=11)
    coinc = sort_coincidences(sim.singles, 5.0, policy="takeAllGoods", energy_window_kev=(250, 750))
    trees = {"Hits": sim.hits, "Singles": sim.singles, "Coincidences": coinc.coincidences}
    path = write_gate(tmp_path_factory.mktemp("root") / "sim.root", trees)
    return path, trees


def test_simulate_write_read_round_trip_loses_nothing(sim_file: tuple[Path, dict[str, GateTree]]) -> None:
    path, trees = sim_file
    assert sorted(tree_names(path)) == ["Coincidences", "Hits", "Singles"]
    for name, tree in trees.items():
        assert len(tree) > 10
        back = read_gate(path, name, progress_bar=False)
        assert back.name == name
        assert back.keys() == tree.keys()  # every branch, in order
        for key in tree:
            assert back[key].dtype == tree[key].dtype, key
            assert np.array_equal(back[key], tree[key]), key  # every value, bit for bit
        assert back.equals(tree)
    # ROOT sees plain TTrees with GATE's branch names
    with uproot.open(path) as fh:
        assert fh.classnames()["Singles;1"] == "TTree"
        assert fh["Coincidences"]["eventID1"].typename == "int32_t"
        assert fh["Singles"]["time"].typename == "double"


def test_chunked_reading_gives_the_same_rows(sim_file: tuple[Path, dict[str, GateTree]]) -> None:
    path, trees = sim_file
    n = len(trees["Singles"])
    chunks = list(
        iterate_gate(path, "Singles", branches=["time", "energy"], step_size=97, progress_bar=False)
    )
    assert [len(c) for c in chunks] == [97] * (n // 97) + ([n % 97] if n % 97 else [])
    joined = GateTree.concatenate(chunks)
    assert joined.keys() == ["time", "energy"]
    assert np.array_equal(joined["time"], trees["Singles"]["time"])
    assert read_gate(path, "Singles", step_size=13, progress_bar=False).equals(trees["Singles"])
    assert read_singles(path, progress_bar=False).equals(trees["Singles"])


def test_missing_branches_are_all_listed(tmp_path: Path) -> None:
    path = write_gate(
        tmp_path / "thin.root", [GateTree("Singles", {"time": np.zeros(3), "energy": np.ones(3)})]
    )
    with pytest.raises(InputError) as info:
        read_singles(path)
    message = str(info.value)
    assert "lacks required branch(es) eventID, rsectorID, crystalID" in message
    assert "it has: time, energy" in message
    with pytest.raises(InputError, match="has no tree 'Hits'"):
        read_gate(path, "Hits")


def test_empty_and_unreadable_files(tmp_path: Path) -> None:
    empty = write_gate(
        tmp_path / "empty.root",
        [GateTree("Singles", {"time": np.zeros(0), "eventID": np.zeros(0, np.int32)})],
    )
    with pytest.raises(InputError, match="is empty"):
        read_gate(empty, "Singles")
    with pytest.raises(InputError, match="does not exist"):
        read_gate(tmp_path / "nope.root")
    junk = tmp_path / "junk.root"
    junk.write_text("not root")
    with pytest.raises(InputError, match="not a readable ROOT file"):
        read_gate(junk)


def test_write_is_atomic_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "out.root"
    write_gate(target, [GateTree("Singles", {"time": np.arange(3.0)})])
    before = target.read_bytes()
    with pytest.raises(InputError, match="neither numeric nor str"):
        write_gate(target, [GateTree("Singles", {"name": np.array([b"a", b"b"])})])
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["out.root"]  # no temporary file left behind


def test_string_branches_round_trip(tmp_path: Path) -> None:
    names = np.array(["NULL", "phantom", "", "crystal", "Wasser-Phantom-ü", "phantom"] * 5)
    tree = GateTree("Singles", {"time": np.arange(30.0), "comptVolName": names})
    path = write_gate(tmp_path / "s.root", [tree])
    with uproot.open(path) as fh:
        assert fh.classnames()["Singles;1"] == "TTree"
        assert fh["Singles"]["comptVolName"].array(library="np").tolist() == names.tolist()
    back = read_gate(path, "Singles", step_size=7, progress_bar=False)
    assert back["comptVolName"].dtype.kind == "U"
    assert back["comptVolName"].tolist() == names.tolist()
    assert back.equals(tree)
    assert not back.equals(GateTree("Singles", {"time": np.arange(30.0), "comptVolName": names[::-1]}))


def test_gate10_singles_are_renamed_and_converted(tmp_path: Path) -> None:
    path = tmp_path / "gate10.root"
    angles = np.array([0.1, 3.3, 1.7, 0.2])
    with uproot.recreate(path) as fh:
        fh.mktree(
            "Singles",
            {
                "EventID": np.int64,
                "GlobalTime": np.float64,
                "TotalEnergyDeposit": np.float64,
                "PostPosition_X": np.float64,
                "PostPosition_Y": np.float64,
                "PostPosition_Z": np.float64,
                "PreStepUniqueVolumeID": "string",
            },
        )
        fh["Singles"].extend(
            {
                "EventID": np.array([0, 0, 1, 2]),
                "GlobalTime": np.array([1.0, 2.5, 40.0, 41.0]),  # ns
                "TotalEnergyDeposit": np.array([0.511, 0.45, 0.511, 0.3]),
                "PostPosition_X": 400 * np.cos(angles),
                "PostPosition_Y": 400 * np.sin(angles),
                "PostPosition_Z": np.zeros(4),
                "PreStepUniqueVolumeID": ak.Array(["0_1_3", "0_9_2", "0_5_0", "0_1_3"]),
            }
        )
    s = read_singles(path, sectors=8, progress_bar=False)
    assert s["time"].tolist() == pytest.approx([1e-9, 2.5e-9, 40e-9, 41e-9])
    assert s["eventID"].tolist() == [0, 0, 1, 2]
    assert s["energy"].tolist() == [0.511, 0.45, 0.511, 0.3]
    assert s["crystalID"].tolist() == [0, 2, 1, 0]  # rank of the volume name
    assert s["rsectorID"].tolist() == [0, 4, 2, 0]  # angle / (2 pi / 8)
    r = sort_coincidences(s, 5.0, policy="takeAllGoods", min_sector_difference=3, sectors=8)
    assert r.pairs.tolist() == [[0, 1]]
    with uproot.recreate(tmp_path / "bad10.root") as fh:
        fh.mktree("Singles", {"GlobalTime": np.float64, "EventID": np.int64})
        fh["Singles"].extend({"GlobalTime": np.zeros(2), "EventID": np.zeros(2, np.int64)})
    with pytest.raises(InputError, match="PreStepUniqueVolumeID, TotalEnergyDeposit, PostPosition_X"):
        read_singles(tmp_path / "bad10.root")
