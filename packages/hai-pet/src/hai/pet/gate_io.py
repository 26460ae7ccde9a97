"""GATE ROOT files in and out, through uproot (no ROOT installation needed).

GATE 9 writes ``Hits``, ``Singles`` and ``Coincidences`` TTrees; opengate (GATE 10) writes
singles with other branch names (``EventID``, ``GlobalTime`` in ns, ``TotalEnergyDeposit``,
``PostPosition_X/Y/Z``, ``PreStepUniqueVolumeID``). hai reads both into GATE 9-named
:class:`~hai.pet.tables.GateTree` tables and writes GATE 9 trees that ROOT and hai open alike.
TTrees and RNTuples are read alike (uproot 5.7 writes an RNTuple for ``file[name] = {...}``).
Files are written through hai.shared's atomic writer, large trees are read in chunks with a
progress bar, and a file that cannot be read (not ROOT, truncated, empty, corrupt, without the
tree or branches asked for) is one :class:`~hai.shared.InputError`.

>>> import tempfile, pathlib
>>> path = pathlib.Path(tempfile.mkdtemp()) / "t.root"
>>> tree = GateTree("Singles", {"time": np.array([0.0, 2e-9]), "energy": np.array([0.5, 0.51])})
>>> _ = write_gate(path, [tree])
>>> read_gate(path, "Singles").equals(tree)
True
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hai.pet.tables import REQUIRED_SINGLES, GateTree
from hai.shared import HaiError, InputError, atomic_path, progress
from hai.shared.checks import positive_int

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


def write_gate(
    path: str | os.PathLike[str],
    trees: Mapping[str, GateTree] | Sequence[GateTree],
    *,
    rntuple: bool = False,
) -> Path:
    """Write GATE trees into a new ROOT file at ``path`` (replaced atomically); return the path.

    ``trees`` is a list of :class:`GateTree` (each written under its name) or a mapping of tree
    name to table. Every numeric column becomes one branch with its dtype; a column of strings
    (numpy ``str``, e.g. ``comptVolName``, ``processName``) becomes a string branch. The trees
    are TTrees (what GATE 9 writes and every ROOT reads), or RNTuples with ``rntuple=True``
    (what uproot 5.7 writes for ``file[name] = {...}``, and GATE 10 output may come as). The
    file is written through :func:`hai.shared.atomic_path`: a failed write leaves an existing
    file whole and no temporary file behind.
    """
    import uproot  # type: ignore[import-untyped]

    items = list(trees.items()) if isinstance(trees, Mapping) else [(t.name, t) for t in trees]
    if not items:
        raise InputError("nothing to write: give at least one tree")
    for name, tree in items:
        if not tree.columns:
            raise InputError(f"tree {name!r} has no branches to write")
        for key, value in tree.columns.items():
            if value.dtype.kind not in "biufU":
                raise InputError(f"branch {key!r} of {name!r} is neither numeric nor str ({value.dtype})")
    target = Path(path)
    with atomic_path(target) as tmp, uproot.recreate(tmp) as fh:
        for name, tree in items:
            n = len(tree)
            for start in range(0, max(n, 1), WRITE_CHUNK):
                chunk = {
                    k: _to_awkward_strings(v[start : start + WRITE_CHUNK])
                    if v.dtype.kind == "U"
                    else v[start : start + WRITE_CHUNK]
                    for k, v in tree.columns.items()
                }
                if start:
                    fh[name].extend(chunk)
                elif rntuple:
                    fh.mkrntuple(name, chunk)
                else:
                    fh.mktree(
                        name,
                        {k: "string" if v.dtype.kind == "U" else v.dtype for k, v in tree.columns.items()},
                    )
                    fh[name].extend(chunk)
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


#: The ROOT classes hai reads GATE tables from.
TABLE_CLASSES: tuple[str, ...] = ("TTree", "ROOT::RNTuple")


def _one_line(exc: BaseException) -> str:
    """An exception as one short line (uproot's messages span several)."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."


def _unreadable(source: Path, exc: BaseException) -> InputError:
    if isinstance(exc, MemoryError):
        return InputError(
            f"{source} declares sizes larger than this machine can hold (a corrupt or crafted ROOT file)",
            hint="check the file; GATE writes sizes that match its content",
        )
    return InputError(
        f"{source} is not a readable ROOT file ({type(exc).__name__}: {_one_line(exc)})",
        hint="give a ROOT file written by GATE, opengate or hai (truncated or foreign files cannot be read)",
    )


def _open_file(path: str | os.PathLike[str]) -> tuple[Path, Any, list[str]]:
    """The checked path, the open uproot file and the names of its trees and RNTuples."""
    import uproot

    source = Path(path)
    if source.is_dir():
        raise InputError(f"ROOT file {source} is a folder, not a file")
    if not source.is_file():
        raise InputError(f"ROOT file {source} does not exist")
    if source.stat().st_size == 0:
        raise InputError(f"ROOT file {source} is empty (0 bytes)")
    try:
        fh = uproot.open(source)
        names = [k.split(";")[0] for k, cls in fh.classnames().items() if cls in TABLE_CLASSES]
    except HaiError:
        raise
    except (Exception, MemoryError) as exc:  # uproot raises many types for corrupt files
        raise _unreadable(source, exc) from None
    return source, fh, list(dict.fromkeys(names))


def _open_tree(path: str | os.PathLike[str], tree: str) -> Any:
    source, fh, names = _open_file(path)
    if tree not in names:
        raise InputError(
            f"{source} has no tree {tree!r}", hint=f"trees and RNTuples: {', '.join(names) or 'none'}"
        )
    try:
        handle = fh[tree]
        handle.keys()
        int(handle.num_entries)
    except (Exception, MemoryError) as exc:
        raise _unreadable(source, exc) from None
    return handle


def tree_names(path: str | os.PathLike[str]) -> list[str]:
    """Names of the TTrees and RNTuples in a ROOT file."""
    return _open_file(path)[2]


#: Bytes per entry that a string or other variable-size branch may declare (GATE's volume and
#: process names are a few characters).
MAX_VARIABLE_ENTRY_BYTES = 4096
#: Slack for a basket's key and headers in its declared uncompressed size.
BASKET_SLACK_BYTES = 4096


_SCALAR_TYPE = re.compile(r"^(std::u?int(8|16|32|64)_t|float|double|bool|char)$")


def _too_large(source: Path, what: str, declared: int, limit: int) -> InputError:
    return InputError(
        f"{source} declares {what} of {declared:,} bytes where its entries need at most {limit:,} "
        "(a corrupt or crafted ROOT file)",
        hint="hai reads only files whose declared sizes match their content",
    )


def _check_declared_sizes(handle: Any, wanted: list[str], source: Path) -> None:
    """Refuse a tree whose declared sizes exceed what its entries can hold, before reading.

    A TTree basket declares its uncompressed size and a reader allocates that much; a crafted
    file can declare gigabytes in a few bytes. Each basket of a fixed-size branch may hold its
    entries' bytes (plus its key), a string branch :data:`MAX_VARIABLE_ENTRY_BYTES` per entry.
    An RNTuple's pages declare their element counts: a column may not hold more elements in a
    cluster than that cluster has entries (times :data:`MAX_VARIABLE_ENTRY_BYTES` for the
    characters of strings). Then the whole read must fit in memory.
    """
    from hai.shared.checks import check_memory

    row_bytes = 0
    if hasattr(handle, "page_link_list"):  # RNTuple
        fields = handle.field_records
        summaries = handle.cluster_summaries
        if sum(int(c.num_entries) for c in summaries) != int(handle.num_entries):
            raise InputError(
                f"{source}: the clusters of RNTuple {handle.name!r} do not add up to its entries"
            )
        wanted_ids = {i for i, f in enumerate(fields) if f.field_name in wanted}
        for cluster, pages in zip(summaries, handle.page_link_list, strict=False):
            n = int(cluster.num_entries)
            for column, col_pages in zip(handle.column_records, pages, strict=False):
                if int(column.field_id) not in wanted_ids:
                    continue
                field = fields[int(column.field_id)]
                per = 1 if _SCALAR_TYPE.match(str(field.type_name)) else MAX_VARIABLE_ENTRY_BYTES
                elements = sum(int(page.num_elements) for page in col_pages.pages)
                if elements > n * per:
                    size = max(int(column.nbits), 8) // 8
                    raise _too_large(
                        source, f"pages of field {field.field_name!r}", elements * size, n * per * size
                    )
        for name in wanted:
            typename = str(handle[name].typename)
            row_bytes += MAX_VARIABLE_ENTRY_BYTES if typename == "std::string" else 8
    else:
        for name in wanted:
            branch = handle[name]
            interpretation = branch.interpretation
            fixed = type(interpretation).__name__ == "AsDtype"
            per = int(interpretation.numpy_dtype.itemsize) if fixed else MAX_VARIABLE_ENTRY_BYTES
            row_bytes += per
            for i in range(int(branch._num_normal_baskets)):
                start, stop = branch.basket_entry_start_stop(i)
                limit = (int(stop) - int(start)) * per + BASKET_SLACK_BYTES
                declared = int(branch.basket_uncompressed_bytes(i))
                if declared > limit or int(stop) < int(start):
                    raise _too_large(source, f"a basket of branch {name!r}", declared, limit)
    check_memory(int(handle.num_entries) * row_bytes, f"reading {len(wanted)} branches of {source}")


def _is_string(handle: Any, branch: str) -> bool:
    field = handle[branch]
    if hasattr(field, "interpretation"):  # TTree branch
        return type(field.interpretation).__name__ == "AsStrings"
    return str(getattr(field, "typename", "")) == "std::string"  # RNTuple field


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
    step_size = positive_int("step_size", step_size)
    source = Path(path)
    handle = _open_tree(source, tree)
    present = list(handle.keys())
    wanted = list(branches) if branches is not None else present
    missing = [b for b in dict.fromkeys([*required, *wanted]) if b not in present]
    if missing:
        raise InputError(
            f"tree {tree!r} in {path} lacks required branch(es) {', '.join(missing)}",
            hint=f"it has: {', '.join(present) or 'no branches'}",
        )
    total = int(handle.num_entries)
    if total <= 0:
        raise InputError(f"tree {tree!r} in {path} is empty (0 entries)")
    try:
        _check_declared_sizes(handle, wanted, source)
        strings = {b for b in wanted if _is_string(handle, b)}
        chunks = handle.iterate(wanted, step_size=step_size, library="ak" if strings else "np")
        if progress_bar:
            chunks = progress(chunks, total=-(-total // step_size), desc=f"reading {tree}", unit="chunk")
        for chunk in chunks:
            yield _chunk_table(tree, wanted, strings, chunk, source)
    except HaiError:
        raise
    except (Exception, MemoryError) as exc:
        raise _unreadable(source, exc) from None


def _chunk_table(tree: str, wanted: list[str], strings: set[str], chunk: Any, source: Path) -> GateTree:
    import awkward as ak

    cols: dict[str, np.ndarray] = {}
    for k in wanted:
        if k in strings:
            cols[k] = _from_awkward_strings(chunk[k])
            continue
        value = ak.to_numpy(chunk[k]) if strings else np.asarray(chunk[k])
        if value.ndim != 1 or value.dtype.kind not in "biuf":
            raise InputError(
                f"branch {k!r} of tree {tree!r} in {source} is not one number per entry "
                f"({value.dtype}, {value.ndim} dimension(s))",
                hint="hai reads GATE's scalar branches; leave this one out (branches=...)",
            )
        cols[k] = value
    return GateTree(tree, cols)


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
