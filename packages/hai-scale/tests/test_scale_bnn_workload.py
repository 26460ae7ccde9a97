"""The pure rank-assignment function: who evaluates which weight samples on which batch rows."""

from __future__ import annotations

import itertools

import pytest

from hai.scale.parallel import MODES, local_workload, shards, split_range, workload, workloads
from hai.shared import InputError


def pairs(mode: str, s: int, b: int, w: int, g: int | None = None) -> list[tuple[int, int]]:
    out = []
    for wl in workloads(mode, s, b, w, g):
        out += list(itertools.product(wl.sample_ids, range(wl.row_start, wl.row_stop)))
    return out


@pytest.mark.parametrize(
    ("mode", "s", "b", "w", "g"),
    [
        ("local", 4, 16, 1, None),
        ("sample", 4, 16, 1, None),
        ("sample", 4, 16, 2, None),
        ("sample", 8, 5, 4, None),
        ("sample", 8, 16, 8, None),
        ("data", 3, 16, 2, None),
        ("data", 1, 16, 8, None),
        ("hybrid", 4, 16, 2, 1),
        ("hybrid", 4, 16, 2, 2),
        ("hybrid", 8, 32, 8, 4),
        ("hybrid", 2, 12, 6, 2),
    ],
)
def test_every_sample_and_row_is_evaluated_exactly_once(
    mode: str, s: int, b: int, w: int, g: int | None
) -> None:
    got = pairs(mode, s, b, w, g)
    assert sorted(got) == sorted(itertools.product(range(s), range(b)))
    assert len(got) == s * b  # samples × batch is invariant across modes


def test_reference_compute_local_workload() -> None:
    # the reference's compute_local_workload(mode, S, B, W, gpus_per_node=4) on 8 ranks
    s, b, w = 16, 256, 8
    assert local_workload("local", s, b, 1) == (16, 256)
    assert local_workload("sample", s, b, w) == (s // w, b)
    assert local_workload("data", s, b, w) == (s, b // w)
    assert local_workload("hybrid", s, b, w, group_size=4) == (s // 4, b // (w // 4))


def test_ranks_in_sample_mode_share_the_batch_and_split_the_samples() -> None:
    ws = workloads("sample", 6, 10, 3)
    assert [list(wl.sample_ids) for wl in ws] == [[0, 1], [2, 3], [4, 5]]
    assert all(wl.rows == slice(0, 10) for wl in ws)
    assert [wl.sample_shard for wl in ws] == [0, 1, 2]
    assert {wl.data_shard for wl in ws} == {0}


def test_hybrid_groups_are_consecutive_ranks() -> None:
    ws = workloads("hybrid", 4, 8, 4, group_size=2)
    assert [(wl.sample_start, wl.sample_stop, wl.row_start, wl.row_stop) for wl in ws] == [
        (0, 2, 0, 4),
        (2, 4, 0, 4),
        (0, 2, 4, 8),
        (2, 4, 4, 8),
    ]
    assert shards("hybrid", 4, 2) == (2, 2)
    assert workload("hybrid", 4, 8, 4, 3, 2).to_dict()["rank"] == 3


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("sample", 3, 8, 2), "weight samples (3) is not divisible by the number of ranks (2)"),
        (("sample", 2, 8, 4), "more ranks (4) than weight samples (2)"),
        (("bogus", 4, 8, 2), "unknown parallel mode 'bogus'"),
        (("data", 4, 6, 4), "batch rows (6) is not divisible"),
        (("data", 4, 2, 4), "more ranks (4) than batch rows (2)"),
        (("local", 4, 8, 2), "mode 'local' runs in one process"),
        (("hybrid", 4, 8, 4), "needs a group size"),
        (("hybrid", 4, 8, 4, 0, 3), "not divisible by the group size"),
        (("hybrid", 3, 8, 4, 0, 2), "weight samples (3) is not divisible by the number of sample shards"),
        (("sample", 0, 8, 1), "samples must be a positive integer"),
        (("sample", 4, 8, 0), "world_size must be a positive integer"),
        (("sample", 4, 8, 2, 2), "rank must be in 0…1"),
    ],
)
def test_bad_input(args: tuple[object, ...], message: str) -> None:
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        workload(*args)  # type: ignore[arg-type]


def test_modes_and_split_range() -> None:
    assert MODES == ("local", "sample", "data", "hybrid")
    parts = [split_range(10, 3, i) for i in range(3)]
    assert parts == [(0, 3), (3, 6), (6, 10)]
    assert split_range(1, 2, 0) == (0, 0)
