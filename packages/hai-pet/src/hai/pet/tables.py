"""GATE-shaped tables: a tree name and equally long numpy columns with GATE's branch names.

Singles, Hits and Coincidences are kept as plain column dictionaries (what uproot reads and
writes) instead of a DataFrame, so that a table goes to and from ROOT without conversion.
Units are GATE's ROOT units: time in s, energy in MeV, positions in mm.

>>> t = GateTree("Singles", {"time": np.array([0.0, 1e-9]), "energy": np.array([0.511, 0.4])})
>>> len(t), t.select(np.array([1]))["energy"].tolist()
(2, [0.4])
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

import numpy as np

from hai.shared import InputError

#: GATE 9 ``Singles`` branches written by hai (comptVolName is a string branch).
SINGLES_BRANCHES: tuple[str, ...] = (
    "runID",
    "eventID",
    "sourceID",
    "sourcePosX",
    "sourcePosY",
    "sourcePosZ",
    "time",
    "energy",
    "globalPosX",
    "globalPosY",
    "globalPosZ",
    "gantryID",
    "rsectorID",
    "moduleID",
    "submoduleID",
    "crystalID",
    "layerID",
    "comptonPhantom",
    "comptonCrystal",
    "RayleighPhantom",
    "RayleighCrystal",
    "comptVolName",
    "axialPos",
    "rotationAngle",
)

#: Extra truth branch of hai's simulated singles: which of the two annihilation photons (1, 2).
TRUTH_BRANCHES: tuple[str, ...] = ("photonID",)

#: GATE 9 ``Hits`` branches written by hai (processName is a string branch; volumeID[10] is not written).
HITS_BRANCHES: tuple[str, ...] = (
    "PDGEncoding",
    "trackID",
    "parentID",
    "photonID",
    "runID",
    "eventID",
    "sourceID",
    "primaryID",
    "time",
    "edep",
    "stepLength",
    "posX",
    "posY",
    "posZ",
    "localPosX",
    "localPosY",
    "localPosZ",
    "sourcePosX",
    "sourcePosY",
    "sourcePosZ",
    "gantryID",
    "rsectorID",
    "moduleID",
    "submoduleID",
    "crystalID",
    "layerID",
    "nPhantomCompton",
    "nCrystalCompton",
    "nPhantomRayleigh",
    "nCrystalRayleigh",
    "processName",
    "axialPos",
    "rotationAngle",
)

#: The per-single fields that a ``Coincidences`` entry carries twice (suffix 1 and 2).
COINCIDENCE_PAIR_FIELDS: tuple[str, ...] = (
    "eventID",
    "sourceID",
    "sourcePosX",
    "sourcePosY",
    "sourcePosZ",
    "time",
    "energy",
    "globalPosX",
    "globalPosY",
    "globalPosZ",
    "gantryID",
    "rsectorID",
    "moduleID",
    "submoduleID",
    "crystalID",
    "layerID",
    "comptonPhantom",
    "comptonCrystal",
    "RayleighPhantom",
    "RayleighCrystal",
    "comptVolName",
)

#: GATE 9 ``Coincidences`` branches written by hai.
COINCIDENCES_BRANCHES: tuple[str, ...] = (
    "runID",
    *(f"{name}{k}" for k in (1, 2) for name in COINCIDENCE_PAIR_FIELDS),
    "axialPos",
    "rotationAngle",
    "sinogramS",
    "sinogramTheta",
)

#: Branches without which a singles table cannot be sorted.
REQUIRED_SINGLES: tuple[str, ...] = ("eventID", "time", "energy", "rsectorID", "crystalID")

#: Real-valued branches that must be finite (NaN or infinity would sort, encode or score silently
#: wrong); ``energy`` must also be ≥ 0.
FINITE_BRANCHES: tuple[str, ...] = ("time", "energy", "globalPosX", "globalPosY", "globalPosZ")
#: GATE's volume and event identifiers: whole numbers ≥ 0.
ID_BRANCHES: tuple[str, ...] = (
    "runID",
    "eventID",
    "sourceID",
    "gantryID",
    "rsectorID",
    "moduleID",
    "submoduleID",
    "crystalID",
    "layerID",
)


def check_singles(tree: GateTree, branches: tuple[str, ...] | list[str] | None = None) -> None:
    """Raise :class:`InputError` naming the first branch of ``tree`` with values no sorter can use.

    Checks the branches of :data:`FINITE_BRANCHES` (finite; ``energy`` ≥ 0) and
    :data:`ID_BRANCHES` (whole numbers ≥ 0) that the tree has, or only those in ``branches``.

    >>> try:
    ...     check_singles(GateTree("Singles", {"crystalID": np.array([3, -1])}))
    ... except InputError as exc:
    ...     print(exc.message[:60])
    branch 'crystalID' of tree 'Singles' has 1 value(s) that are
    """
    wanted = set(FINITE_BRANCHES + ID_BRANCHES) if branches is None else set(branches)
    for name in FINITE_BRANCHES:
        if name not in wanted or name not in tree.columns:
            continue
        values = tree.columns[name]
        if values.dtype.kind not in "biuf":
            raise InputError(f"branch {name!r} of tree {tree.name!r} must be numeric, not {values.dtype}")
        if values.dtype.kind == "f":
            bad = np.flatnonzero(~np.isfinite(values))
            if len(bad):
                raise InputError(
                    f"branch {name!r} of tree {tree.name!r} has {len(bad)} NaN or infinite value(s), "
                    f"the first at row {bad[0]} ({values[bad[0]].item()!r})",
                    hint="remove or repair those entries, e.g. keep rows where numpy.isfinite holds",
                )
        if name == "energy":
            negative = np.flatnonzero(values < 0)
            if len(negative):
                raise InputError(
                    f"branch 'energy' of tree {tree.name!r} has {len(negative)} negative value(s), "
                    f"the first at row {negative[0]} ({values[negative[0]].item()!r} MeV)",
                    hint="energies are deposits in MeV, ≥ 0",
                )
    for name in ID_BRANCHES:
        if name not in wanted or name not in tree.columns:
            continue
        values = tree.columns[name]
        if values.dtype.kind not in "biuf":
            raise InputError(
                f"branch {name!r} of tree {tree.name!r} must be an integer ID, not {values.dtype}"
            )
        if values.dtype.kind in "bu":
            continue
        ok = values >= 0
        if values.dtype.kind == "f":
            ok &= np.isfinite(values) & (values == np.round(values))
        bad = np.flatnonzero(~ok)
        if len(bad):
            raise InputError(
                f"branch {name!r} of tree {tree.name!r} has {len(bad)} value(s) that are not IDs "
                f"(whole numbers ≥ 0), the first at row {bad[0]} ({values[bad[0]].item()!r})",
                hint="GATE numbers events and volumes from 0; check the file or the geometry",
            )


@dataclass
class GateTree:
    """One GATE tree in memory: its name (Singles, Hits, Coincidences) and its columns."""

    name: str
    columns: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.columns = {key: np.asarray(value) for key, value in self.columns.items()}
        lengths = {key: len(value) for key, value in self.columns.items()}
        if len(set(lengths.values())) > 1:
            raise InputError(f"columns of tree {self.name!r} differ in length: {lengths}")
        for key, value in self.columns.items():
            if value.ndim != 1:
                raise InputError(f"column {key!r} of tree {self.name!r} must be one-dimensional")

    def __len__(self) -> int:
        return len(next(iter(self.columns.values()))) if self.columns else 0

    def __getitem__(self, key: str) -> np.ndarray:
        try:
            return self.columns[key]
        except KeyError:
            raise InputError(
                f"tree {self.name!r} has no branch {key!r}", hint=f"branches: {sorted(self.columns)}"
            ) from None

    def __contains__(self, key: object) -> bool:
        return key in self.columns

    def __iter__(self) -> Iterator[str]:
        return iter(self.columns)

    def keys(self) -> list[str]:
        """Branch names in order."""
        return list(self.columns)

    def select(self, index: np.ndarray) -> GateTree:
        """The rows ``index`` (integer indices or a boolean mask) as a new tree."""
        return GateTree(self.name, {key: value[index] for key, value in self.columns.items()})

    def require(self, branches: tuple[str, ...] | list[str]) -> None:
        """Raise :class:`InputError` listing every branch of ``branches`` that is missing."""
        missing = [b for b in branches if b not in self.columns]
        if missing:
            raise InputError(
                f"tree {self.name!r} lacks required branch(es) {', '.join(missing)}",
                hint=f"it has: {', '.join(sorted(self.columns)) or 'no branches'}",
            )

    @classmethod
    def concatenate(cls, parts: list[GateTree] | tuple[GateTree, ...], name: str | None = None) -> GateTree:
        """Rows of several trees with the same branches, one after the other."""
        if not parts:
            return cls(name or "Singles", {})
        keys = parts[0].keys()
        return cls(name or parts[0].name, {k: np.concatenate([p[k] for p in parts]) for k in keys})

    def equals(self, other: Mapping[str, np.ndarray] | GateTree) -> bool:
        """Same branches and bit-identical values (NaN equal to NaN)."""
        cols = other.columns if isinstance(other, GateTree) else dict(other)
        if set(cols) != set(self.columns):
            return False

        def same(a: np.ndarray, b: np.ndarray) -> bool:
            if a.dtype.kind == b.dtype.kind == "U":  # strings: equal values, whatever the width
                return np.array_equal(a, b)
            return a.dtype == b.dtype and np.array_equal(a, b, equal_nan=b.dtype.kind == "f")

        return all(same(cols[k], v) for k, v in self.columns.items())
