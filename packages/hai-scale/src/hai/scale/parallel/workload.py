"""Who computes what: the local weight samples and batch rows of each rank, as a pure function.

For S weight samples, a global batch of B examples and W ranks:

=========  ===============================  ==========================================
mode       samples on a rank                batch rows on a rank
=========  ===============================  ==========================================
local      all S (W must be 1)              all B
sample     S/W (rank r: r·S/W … )           all B (the same batch on every rank)
data       all S                            B/W (rank r: r·B/W …), DDP's split
hybrid     S/G within a group of G ranks    B/(W/G): ranks r // G share a batch shard
=========  ===============================  ==========================================

In ``hybrid`` the G consecutive ranks of a group split the samples (as the ranks of one node
do in the reference implementation) and the W/G groups split the batch. Samples × rows summed
over all ranks is S·B in every mode: each (sample, example) pair is evaluated exactly once.
Bad input raises :class:`~hai.shared.InputError` with the same message on every rank, so
that all ranks stop before any collective call.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from hai.shared import InputError

MODES: tuple[str, ...] = ("local", "sample", "data", "hybrid")


@dataclass(frozen=True)
class Workload:
    """What one rank computes: samples ``sample_start…sample_stop-1`` on rows ``row_start…row_stop-1``."""

    mode: str
    rank: int
    world_size: int
    samples: int
    batch_size: int
    sample_start: int
    sample_stop: int
    row_start: int
    row_stop: int
    sample_shards: int
    data_shards: int

    @property
    def local_samples(self) -> int:
        return self.sample_stop - self.sample_start

    @property
    def local_batch(self) -> int:
        return self.row_stop - self.row_start

    @property
    def sample_ids(self) -> range:
        return range(self.sample_start, self.sample_stop)

    @property
    def rows(self) -> slice:
        return slice(self.row_start, self.row_stop)

    @property
    def sample_shard(self) -> int:
        """Which part of the samples this rank holds (0 … sample_shards-1)."""
        return self.rank % self.sample_shards

    @property
    def data_shard(self) -> int:
        """Which part of the batch this rank holds (0 … data_shards-1)."""
        return self.rank // self.sample_shards

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _positive(name: str, value: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise InputError(f"{name} must be a positive integer, got {value!r}")


def _divide(total: int, parts: int, what: str, over: str) -> None:
    if parts > total:
        raise InputError(
            f"more {over} ({parts}) than {what} ({total})",
            hint=f"use at most {total} {over}, or more {what}",
        )
    if total % parts:
        raise InputError(
            f"{what} ({total}) is not divisible by the number of {over} ({parts})",
            hint=f"use a multiple of {parts} {what}",
        )


def shards(mode: str, world_size: int, group_size: int | None = None) -> tuple[int, int]:
    """(sample shards, data shards) of ``mode`` on ``world_size`` ranks; their product is the world size."""
    if mode not in MODES:
        raise InputError(f"unknown parallel mode {mode!r}", hint=f"use one of {', '.join(MODES)}")
    _positive("world_size", world_size)
    if mode == "local":
        if world_size != 1:
            raise InputError(
                f"mode 'local' runs in one process, but there are {world_size}",
                hint="use --mode sample, data or hybrid with several processes",
            )
        return 1, 1
    if mode == "sample":
        return world_size, 1
    if mode == "data":
        return 1, world_size
    if group_size is None:
        raise InputError("mode 'hybrid' needs a group size (ranks that split the samples)")
    _positive("group_size", group_size)
    if world_size % group_size:
        raise InputError(
            f"the world size ({world_size}) is not divisible by the group size ({group_size})",
            hint="hybrid groups must tile the ranks",
        )
    return group_size, world_size // group_size


def workload(
    mode: str, samples: int, batch_size: int, world_size: int, rank: int = 0, group_size: int | None = None
) -> Workload:
    """The samples and batch rows of ``rank`` for (mode, S, B, W, group size).

    >>> w = workload("sample", samples=8, batch_size=64, world_size=4, rank=1)
    >>> w.sample_ids, w.rows
    (range(2, 4), slice(0, 64, None))
    >>> workload("hybrid", 8, 64, world_size=4, rank=3, group_size=2).sample_ids
    range(4, 8)
    """
    _positive("samples", samples)
    _positive("batch_size", batch_size)
    n_sample, n_data = shards(mode, world_size, group_size)
    if not isinstance(rank, int) or not 0 <= rank < world_size:
        raise InputError(f"rank must be in 0…{world_size - 1}, got {rank!r}")
    _divide(
        samples,
        n_sample,
        "weight samples",
        "sample shards (ranks per group)" if mode == "hybrid" else "ranks",
    )
    _divide(batch_size, n_data, "batch rows", "data shards" if mode == "hybrid" else "ranks")
    s_local, b_local = samples // n_sample, batch_size // n_data
    i, d = rank % n_sample, rank // n_sample
    return Workload(
        mode=mode,
        rank=rank,
        world_size=world_size,
        samples=samples,
        batch_size=batch_size,
        sample_start=i * s_local,
        sample_stop=(i + 1) * s_local,
        row_start=d * b_local,
        row_stop=(d + 1) * b_local,
        sample_shards=n_sample,
        data_shards=n_data,
    )


def workloads(
    mode: str, samples: int, batch_size: int, world_size: int, group_size: int | None = None
) -> list[Workload]:
    """The workload of every rank (validated once)."""
    return [workload(mode, samples, batch_size, world_size, r, group_size) for r in range(world_size)]


def local_workload(
    mode: str, samples: int, batch_size: int, world_size: int, group_size: int | None = None
) -> tuple[int, int]:
    """(local samples, local batch), as the reference's ``compute_local_workload``.

    >>> local_workload("data", 4, 64, 2)
    (4, 32)
    """
    w = workload(mode, samples, batch_size, world_size, 0, group_size)
    return w.local_samples, w.local_batch


def split_range(total: int, parts: int, index: int) -> tuple[int, int]:
    """Near-equal contiguous split of ``range(total)`` into ``parts``: the bounds of part ``index``."""
    return index * total // parts, (index + 1) * total // parts
