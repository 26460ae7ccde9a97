"""Bytes handed to collectives, counted where they are issued, per phase of training.

:func:`count_collectives` wraps ``torch.distributed.all_reduce``, ``broadcast`` and
``all_gather`` for the duration of a block, so it sees AB-training's own synchronisation, the
DDP hook :func:`counting_allreduce_hook` (used instead of DDP's C++ default, which a Python
wrap would miss) and torch's PowerSGD hook (which issues its all-reduces from Python). A count
is the payload of one rank: the bytes of the tensors it passes in, not the traffic of the
all-reduce algorithm underneath (a ring all-reduce sends about twice that).
"""

# No `from __future__ import annotations`: DDP checks the hook's annotations at run time.
import contextlib
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.distributed as dist

__all__ = ["CommCounter", "count_collectives", "counting_allreduce_hook"]


@dataclass
class CommCounter:
    """Payload bytes and calls per phase label (set ``phase`` before each step)."""

    phase: str = "setup"
    bytes: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    calls: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def add(self, tensors: list[torch.Tensor]) -> None:
        self.bytes[self.phase] += sum(t.numel() * t.element_size() for t in tensors)
        self.calls[self.phase] += 1

    @property
    def total_bytes(self) -> int:
        return sum(self.bytes.values())

    def to_dict(self) -> dict[str, Any]:
        return {"total_bytes": self.total_bytes, "bytes": dict(self.bytes), "calls": dict(self.calls)}


@contextlib.contextmanager
def count_collectives(counter: CommCounter) -> Iterator[CommCounter]:
    """Count every all_reduce, broadcast and all_gather issued from Python inside the block."""
    originals = {name: getattr(dist, name) for name in ("all_reduce", "broadcast", "all_gather")}

    def all_reduce(tensor: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        counter.add([tensor])
        return originals["all_reduce"](tensor, *args, **kwargs)

    def broadcast(tensor: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        counter.add([tensor])
        return originals["broadcast"](tensor, *args, **kwargs)

    def all_gather(tensor_list: list[torch.Tensor], tensor: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        counter.add([tensor])
        return originals["all_gather"](tensor_list, tensor, *args, **kwargs)

    dist.all_reduce, dist.broadcast, dist.all_gather = all_reduce, broadcast, all_gather
    try:
        yield counter
    finally:
        for name, fn in originals.items():
            setattr(dist, name, fn)


def counting_allreduce_hook(
    process_group: Any, bucket: dist.GradBucket
) -> torch.futures.Future[torch.Tensor]:
    """DDP's averaging all-reduce, issued through ``dist.all_reduce`` so that it is counted."""
    group = process_group if process_group is not None else dist.group.WORLD
    buffer = bucket.buffer()
    buffer.div_(dist.get_world_size(group))
    work = dist.all_reduce(buffer, group=group, async_op=True)
    assert work is not None
    return work.get_future().then(lambda fut: fut.value()[0])
