"""Exactness by design: 2 gloo processes give the loss and gradients of one process, to 1e-6 (float64)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory: pytest.TempPathFactory, dist_worker: Any) -> list[dict[str, Any]]:
    """scale_dist_worker.py on 2 processes (gloo, file:// rendezvous): their results."""
    result: list[dict[str, Any]] = dist_worker.spawn(2, tmp_path_factory.mktemp("ranks"))
    return result


@pytest.fixture(scope="module")
def reference(dist_worker: Any) -> dict[str, Any]:
    result: dict[str, Any] = dist_worker.run_cases()
    return result


CASES = [
    "sample",
    "sample-flipout",
    "data",
    "hybrid-g1",
    "hybrid-g2",
    "predictive-sample",
    "predictive-data",
    "predictive-hybrid-g2",
]


def assert_match(ranks: list[dict[str, Any]], reference: dict[str, Any], case: str) -> None:
    ref = reference[case]
    for rank in ranks:
        got = rank[case]
        assert got["loss"] == pytest.approx(ref["loss"], abs=1e-6, rel=1e-6)
        assert abs(got["loss"] - ref["loss"]) < 1e-12
        assert set(got["grads"]) == set(ref["grads"])
        for name, g in ref["grads"].items():
            assert g.dtype == torch.float64
            torch.testing.assert_close(got["grads"][name], g, atol=1e-6, rtol=0)
            assert (got["grads"][name] - g).abs().max() < 1e-12
        torch.testing.assert_close(got["probs"], ref["probs"], atol=1e-12, rtol=0)


@pytest.mark.distributed
@pytest.mark.timeout(200)
@pytest.mark.parametrize("case", CASES)
def test_two_ranks_match_one_process(
    two_ranks: list[dict[str, Any]], reference: dict[str, Any], case: str
) -> None:
    assert_match(two_ranks, reference, case)


@pytest.mark.distributed
@pytest.mark.slow
@pytest.mark.timeout(240)
def test_four_ranks_match_one_process(tmp_path: Path, reference: dict[str, Any], dist_worker: Any) -> None:
    ranks = dist_worker.spawn(4, tmp_path)
    for case in CASES:
        assert_match(ranks, reference, case)
    assert [r["sample"]["samples"] for r in ranks] == [[0], [1], [2], [3]]
    assert [r["hybrid-g2"]["rows"] for r in ranks] == [(0, 4), (0, 4), (4, 8), (4, 8)]
    assert ranks[0]["errors"]["more-ranks"] is not None


@pytest.mark.distributed
@pytest.mark.timeout(200)
def test_sample_mode_same_batch_different_noise_and_augmentation(two_ranks: list[dict[str, Any]]) -> None:
    r0, r1 = two_ranks[0]["sample"], two_ranks[1]["sample"]
    assert r0["samples"] == [0, 1]
    assert r1["samples"] == [2, 3]
    assert torch.equal(r0["batch"], r1["batch"])  # the same batch on both ranks
    assert not torch.allclose(r0["weight"], r1["weight"])  # different weight samples
    assert not torch.allclose(r0["augmented"], r1["augmented"])  # different augmentations
    d0, d1 = two_ranks[0]["data"], two_ranks[1]["data"]
    assert d0["rows"] == (0, 4)
    assert d1["rows"] == (4, 8)
    assert d0["samples"] == d1["samples"] == [0, 1, 2, 3]


@pytest.mark.distributed
@pytest.mark.timeout(200)
def test_bad_input_raises_on_every_rank_before_any_collective(two_ranks: list[dict[str, Any]]) -> None:
    for rank in two_ranks:
        errors = rank["errors"]
        assert "not divisible" in errors["not-divisible"]
        assert "more ranks (2) than weight samples (1)" in errors["more-ranks"]
        assert "unknown parallel mode 'bogus'" in errors["unknown-mode"]
    assert two_ranks[0]["errors"] == two_ranks[1]["errors"]
