"""Shared test setup: one torch thread (the tests' networks are tiny; on a busy 2-core machine two
threads spin against each other and make each epoch many times slower)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_torch_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
