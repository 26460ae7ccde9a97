"""What an energy sweep runs: a grid over world size × global batch × local batch.

Each point trains the same workload for the same number of epochs with data parallelism:
``world_size`` processes, each taking ``local_batch`` samples per forward pass and
accumulating gradients over ``global_batch / (world_size · local_batch)`` passes per update.
A sweep's definition has a key (a hash of its JSON), written at the head of its results table,
so that a table is never continued by a different sweep.

>>> spec = SweepSpec(world_sizes=(1, 2), global_batches=(64,), local_batches=(16, 32))
>>> [(p.world_size, p.local_batch, p.accumulation) for p in spec.points()]
[(1, 16, 4), (1, 32, 2), (2, 16, 2), (2, 32, 1)]
"""

from __future__ import annotations

import hashlib
import itertools
import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from hai.shared import InputError
from hai.shared.checks import positive_float, positive_int

WORKLOADS = ("digits", "afno", "resnet")


@dataclass(frozen=True)
class SweepPoint:
    """One training run of a sweep."""

    world_size: int
    global_batch: int
    local_batch: int

    @property
    def accumulation(self) -> int:
        return self.global_batch // (self.world_size * self.local_batch)

    @property
    def name(self) -> str:
        return f"w{self.world_size}-g{self.global_batch}-l{self.local_batch}"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "accumulation": self.accumulation}


def is_user_workload(name: str) -> bool:
    """Whether ``name`` names a user's workload factory, ``package.module:function``.

    >>> is_user_workload("mylab.workloads:unet"), is_user_workload("digits"), is_user_workload("a:b:c")
    (True, False, False)
    """
    module, sep, function = name.partition(":")
    parts = module.split(".")
    return bool(sep) and function.isidentifier() and all(p.isidentifier() for p in parts)


@dataclass(frozen=True)
class SweepSpec:
    """The grid, the workload (with its size options) and the training budget."""

    workload: str = "digits"
    world_sizes: tuple[int, ...] = (1, 2)
    global_batches: tuple[int, ...] = (64, 128, 256)
    local_batches: tuple[int, ...] = (16, 32)
    epochs: float = 3.0
    lr: float = 1e-3
    seed: int = 0
    options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.workload not in WORKLOADS and not is_user_workload(self.workload):
            raise InputError(
                f"unknown workload {self.workload!r}",
                hint="one of " + ", ".join(WORKLOADS) + ", or your own as 'module:function'",
            )
        for name in ("world_sizes", "global_batches", "local_batches"):
            values = getattr(self, name)
            if not values:
                raise InputError(f"{name} needs at least one value")
            for value in values:
                positive_int(name, value)
        positive_float("epochs", self.epochs)
        positive_float("lr", self.lr)
        bad = [
            (w, g, b)
            for w, g, b in itertools.product(self.world_sizes, self.global_batches, self.local_batches)
            if g % (w * b)
        ]
        if bad:
            shown = ", ".join(f"global {g} on {w} × local {b}" for w, g, b in bad[:4])
            raise InputError(
                f"{len(bad)} point(s) of the grid have a global batch not divisible by world size × local "
                f"batch ({shown})",
                hint="choose global batches that are multiples of every world size × local batch",
            )

    def points(self) -> list[SweepPoint]:
        return [
            SweepPoint(w, g, b)
            for w, g, b in itertools.product(self.world_sizes, self.global_batches, self.local_batches)
        ]

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for name in ("world_sizes", "global_batches", "local_batches"):
            out[name] = list(out[name])
        return out

    @classmethod
    def from_dict(cls, data: Any) -> SweepSpec:
        """The spec of a table header or a spec file; unknown fields and bad types are refused."""
        if not isinstance(data, dict):
            raise InputError(f"a sweep definition must be a JSON object, not {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise InputError(
                f"unknown field(s) {unknown} in the sweep definition", hint=f"known: {sorted(known)}"
            )
        values = dict(data)
        for name in ("world_sizes", "global_batches", "local_batches"):
            if name in values:
                if not isinstance(values[name], list | tuple):
                    raise InputError(f"{name} in the sweep definition must be a list of integers")
                values[name] = tuple(values[name])
        if not isinstance(values.get("options", {}), dict):
            raise InputError("options in the sweep definition must be a JSON object")
        if not isinstance(values.get("workload", ""), str):
            raise InputError("workload in the sweep definition must be a name")
        return cls(**values)

    @property
    def key(self) -> str:
        """A short hash of the definition: the same sweep has the same key on every machine."""
        text = json.dumps(self.to_dict(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]
