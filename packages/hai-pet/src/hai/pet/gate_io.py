"""GATE ROOT files in and out, through uproot (no ROOT installation needed).

GATE 9 writes ``Hits``, ``Singles`` and ``Coincidences`` TTrees; opengate (GATE 10) writes
singles with other branch names (``EventID``, ``GlobalTime`` in ns, ``TotalEnergyDeposit``,
``PostPosition_X/Y/Z``, ``PreStepUniqueVolumeID``). hai reads both into GATE 9-named
:class:`~hai.pet.tables.GateTree` tables and writes GATE 9 trees that ROOT and hai open alike.
Files are written atomically (a temporary file in the same folder, then ``os.replace``), and
large trees are read in chunks with a progress bar.

>>> import tempfile, pathlib
>>> path = pathlib.Path(tempfile.mkdtemp()) / "t.root"
>>> tree = GateTree("Singles", {"time": np.array([0.0, 2e-9]), "energy": np.array([0.5, 0.51])})
>>> _ = write_gate(path, [tree])
>>> read_gate(path, "Singles").equals(tree)
True
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hai.pet.tables import REQUIRED_SINGLES, GateTree
from hai.shared import InputError, progress

WRITE_CHUNK = 1_000_000
READ_STEP = 1_000_000

#: GATE 10 (opengate) singles branches and the GATE 9 names hai gives them.
GATE10_TO_GATE9: dict[str, str] = {
    "EventID": "eventID",
    "GlobalTime": "time",
    "TotalEnergyDeposit": "energy",
    "PostPosition_X": "globalPosX",
    "PostPosition_Y": "globalPosY",
    "PostPosition_Z": "globalPosZ",
}
#: The branches opengate's coincidence sorter requires.
GATE10_REQUIRED: tuple[str, ...] = (
    "EventID",
    "GlobalTime",
    "PreStepUniqueVolumeID",
    "TotalEnergyDeposit",
    "PostPosition_X",
    "PostPosition_Y",
    "PostPosition_Z",
)


def write_gate(path: str | os.PathLike[str], trees: Mapping[str, GateTree] | Sequence[GateTree]) -> Path:
    """Write GATE trees into a new ROOT file at ``path`` (replaced atomically); return the path.

    ``trees`` is a list of :class:`GateTree` (each written under its name) or a mapping of tree
    name to table. Every numeric column becomes one branch with its dtype; a column of strings
    (numpy ``str``, e.g. ``comptVolName``, ``processName``) becomes a string branch.
    """
    import uproot  # type: ignore[import-untyped]

    items = list(trees.items()) if isinstance(trees, Mapping) else [(t.name, t) for t in trees]
    if not items:
        raise InputError("nothing to write: give at least one tree")
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    try:
        with uproot.recreate(tmp_name) as fh:
            for name, tree in items:
                for key, value in tree.columns.items():
                    if value.dtype.kind not in "biufU":
                        raise InputError(
                            f"branch {key!r} of {name!r} is neither numeric nor str ({value.dtype})"
                        )
                fh.mktree(
                    name,
                    {k: "string" if v.dtype.kind == "U" else v.dtype for k, v in tree.columns.items()},
                )
                n = len(tree)
                for start in range(0, n, WRITE_CHUNK):
                    fh[name].extend(
                        {
                            k: _to_awkward_strings(v[start : start + WRITE_CHUNK])
                            if v.dtype.kind == "U"
                            else v[start : start + WRITE_CHUNK]
                            for k, v in tree.columns.items()
                        }
                    )
        os.replace(tmp_name, target)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return target


def _to_awkward_strings(values: np.ndarray) -> Any:
    """A numpy ``str`` column as an awkward string array, built without a Python loop over rows
    (GATE's string branches hold a few distinct names: each is encoded once)."""
    import awkward as ak  # type: ignore[import-untyped]

    names, inverse = np.unique(values, return_inverse=True)
    encoded = [str(name).encode() for name in names]
    name_len = np.array([len(e) for e in encoded], dtype=np.int64)
    name_start = np.concatenate([[0], np.cumsum(name_len)[:-1]]).astype(np.int64)
    pool = np.frombuffer(b"".join(encoded), dtype=np.uint8)
    lengths = name_len[inverse]
    offsets = np.zeros(len(values) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    row = np.repeat(np.arange(len(values)), lengths)
    chars = pool[name_start[inverse][row] + np.arange(offsets[-1]) - offsets[row]] if len(pool) else pool
    content = ak.contents.NumpyArray(chars, parameters={"__array__": "char"})
    layout = ak.contents.ListOffsetArray(
        ak.index.Index64(offsets), content, parameters={"__array__": "string"}
    )
    return ak.Array(layout)


def _from_awkward_strings(array: Any) -> np.ndarray:
    """An awkward string array (a string branch read by uproot) as a numpy ``str`` column."""
    import awkward as ak

    layout = ak.to_layout(array).to_ListOffsetArray64(True)
    offsets = np.asarray(layout.offsets)
    chars = np.asarray(layout.content.data)[offsets[0] :]
    offsets = offsets - offsets[0]
    lengths = np.diff(offsets)
    width = max(int(lengths.max()) if len(lengths) else 0, 1)
    padded = np.zeros((len(lengths), width), dtype=np.uint8)
    row = np.repeat(np.arange(len(lengths)), lengths)
    padded[row, np.arange(offsets[-1]) - offsets[row]] = chars[: offsets[-1]]
    names, inverse = np.unique(padded.view(f"S{width}").ravel(), return_inverse=True)
    decoded = np.array([name.decode() for name in names], dtype=str)  # UTF-8, once per name
    return decoded[inverse.ravel()] if len(names) else np.zeros(0, dtype="U1")


def _open_tree(path: str | os.PathLike[str], tree: str) -> Any:
    import uproot

    source = Path(path)
    if not source.is_file():
        raise InputError(f"ROOT file {source} does not exist")
    try:
        fh = uproot.open(source)
    except Exception as exc:
        raise InputError(f"{source} is not a readable ROOT file: {exc}") from exc
    names = [k.split(";")[0] for k, cls in fh.classnames().items() if cls == "TTree"]
    if tree not in names:
        raise InputError(f"{source} has no tree {tree!r}", hint=f"trees: {', '.join(names) or 'none'}")
    return fh[tree]


def tree_names(path: str | os.PathLike[str]) -> list[str]:
    """Names of the TTrees in a ROOT file."""
    import uproot

    source = Path(path)
    if not source.is_file():
        raise InputError(f"ROOT file {source} does not exist")
    with uproot.open(source) as fh:
        return [k.split(";")[0] for k, cls in fh.classnames().items() if cls == "TTree"]


def iterate_gate(
    path: str | os.PathLike[str],
    tree: str = "Singles",
    *,
    branches: Sequence[str] | None = None,
    required: Sequence[str] = (),
    step_size: int = READ_STEP,
    progress_bar: bool = True,
) -> Iterator[GateTree]:
    """Read a tree chunk by chunk (``step_size`` entries each), with a progress bar.

    Raises :class:`InputError` listing all ``required`` (or requested) branches that the
    tree lacks, and for an empty tree.
    """
    if step_size <= 0:
        raise InputError(f"step_size must be positive, got {step_size}")
    handle = _open_tree(path, tree)
    present = list(handle.keys())
    wanted = list(branches) if branches is not None else present
    missing = [b for b in dict.fromkeys([*required, *wanted]) if b not in present]
    if missing:
        raise InputError(
            f"tree {tree!r} in {path} lacks required branch(es) {', '.join(missing)}",
            hint=f"it has: {', '.join(present) or 'no branches'}",
        )
    total = int(handle.num_entries)
    if total == 0:
        raise InputError(f"tree {tree!r} in {path} is empty (0 entries)")
    strings = {b for b in wanted if type(handle[b].interpretation).__name__ == "AsStrings"}
    chunks = handle.iterate(wanted, step_size=step_size, library="ak" if strings else "np")
    if progress_bar:
        chunks = progress(chunks, total=-(-total // step_size), desc=f"reading {tree}", unit="chunk")
    for chunk in chunks:
        if not strings:
            yield GateTree(tree, {k: np.asarray(chunk[k]) for k in wanted})
            continue
        import awkward as ak

        yield GateTree(
            tree,
            {k: _from_awkward_strings(chunk[k]) if k in strings else ak.to_numpy(chunk[k]) for k in wanted},
        )


def read_gate(
    path: str | os.PathLike[str],
    tree: str = "Singles",
    *,
    branches: Sequence[str] | None = None,
    required: Sequence[str] = (),
    step_size: int = READ_STEP,
    progress_bar: bool = True,
) -> GateTree:
    """Read a whole GATE tree (in chunks of ``step_size``) into one :class:`GateTree`."""
    parts = list(
        iterate_gate(
            path, tree, branches=branches, required=required, step_size=step_size, progress_bar=progress_bar
        )
    )
    return GateTree.concatenate(parts, name=tree)


def read_gate10_singles(
    path: str | os.PathLike[str],
    tree: str = "Singles",
    *,
    sectors: int = 1,
    step_size: int = READ_STEP,
    progress_bar: bool = True,
) -> GateTree:
    """Read opengate (GATE 10) singles and rename them to GATE 9 branches.

    ``GlobalTime`` (ns) becomes ``time`` (s), ``TotalEnergyDeposit`` (MeV) ``energy``. Each
    distinct ``PreStepUniqueVolumeID`` gets a ``crystalID`` (its rank among the names); the
    ``rsectorID`` is the angular sector of the single's position among ``sectors`` equal
    sectors, so that a minimum sector difference can be applied.
    """
    if sectors <= 0:
        raise InputError(f"sectors must be positive, got {sectors}")
    raw = read_gate(
        path,
        tree,
        required=GATE10_REQUIRED,
        branches=GATE10_REQUIRED,
        step_size=step_size,
        progress_bar=progress_bar,
    )
    cols = {GATE10_TO_GATE9[k]: np.asarray(raw[k]) for k in GATE10_TO_GATE9}
    cols["time"] = cols["time"].astype(np.float64) * 1e-9
    cols["eventID"] = cols["eventID"].astype(np.int64)
    volumes = np.asarray([str(v) for v in raw["PreStepUniqueVolumeID"]])
    _, crystal = np.unique(volumes, return_inverse=True)
    angle = np.mod(np.arctan2(cols["globalPosY"], cols["globalPosX"]), 2 * np.pi)
    cols["crystalID"] = crystal.astype(np.int32)
    cols["rsectorID"] = np.minimum((angle / (2 * np.pi) * sectors).astype(np.int32), sectors - 1)
    return GateTree("Singles", cols)


def read_singles(
    path: str | os.PathLike[str],
    tree: str | None = None,
    *,
    sectors: int = 1,
    step_size: int = READ_STEP,
    progress_bar: bool = True,
) -> GateTree:
    """Singles from a GATE 9 or GATE 10 file, with GATE 9 branch names.

    Without ``tree``, the tree is ``Singles`` if present, else the only tree whose name starts
    with ``Singles``. GATE 10 files are recognised by their ``GlobalTime`` branch.
    """
    if tree is None:
        names = tree_names(path)
        candidates = ["Singles"] if "Singles" in names else [n for n in names if n.startswith("Singles")]
        if len(candidates) != 1:
            raise InputError(
                f"cannot tell which tree of {path} holds the singles",
                hint=f"trees: {', '.join(names) or 'none'}; name one",
            )
        tree = candidates[0]
    handle = _open_tree(path, tree)
    if "GlobalTime" in handle:
        return read_gate10_singles(
            path, tree, sectors=sectors, step_size=step_size, progress_bar=progress_bar
        )
    return read_gate(path, tree, required=REQUIRED_SINGLES, step_size=step_size, progress_bar=progress_bar)
