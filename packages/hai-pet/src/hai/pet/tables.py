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
