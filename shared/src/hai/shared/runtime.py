"""Devices, seeds and named random streams.

``resolve_device("auto")`` picks CUDA when a GPU is usable, else the CPU; anything else must
name a device that exists here. ``seed_everything`` seeds python, numpy and torch at once;
:class:`RngStreams` gives independent, reproducible generators by name, so that adding a new
random consumer does not shift the numbers another one draws. ``torch_threads(n)`` runs a block
with ``n`` torch CPU threads.
"""

from __future__ import annotations

import hashlib
import numbers
import random
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import numpy as np

from hai.shared._optional import optional, require
from hai.shared.errors import DeviceError

if TYPE_CHECKING:
    import torch

_DEVICE_KINDS = ("auto", "cpu", "cuda", "mps")


def resolve_device(spec: Any = "auto") -> torch.device:
    """Return the ``torch.device`` for ``spec``: "auto", "cpu", "cuda", "cuda:N", "mps" or a device.

    Raises :class:`DeviceError` for an unknown spec or a device this machine does not have.

    >>> resolve_device("cpu")
    device(type='cpu')
    """
    torch = require("torch", extra="torch")
    if isinstance(spec, torch.device):
        spec = str(spec)
    if not isinstance(spec, str) or not spec.strip():
        raise DeviceError(f"device must be a string such as 'auto', 'cpu' or 'cuda:0', got {spec!r}")
    text = spec.strip().lower()
    kind, _, index_text = text.partition(":")
    if kind not in _DEVICE_KINDS or (index_text and not index_text.isdigit()):
        raise DeviceError(f"unknown device {spec!r}", hint="use one of auto, cpu, cuda, cuda:N, mps")
    if kind == "auto":
        if index_text:
            raise DeviceError(f"unknown device {spec!r}", hint="'auto' takes no index")
        if torch.cuda.is_available():
            return torch.device("cuda", torch.cuda.current_device())
        return torch.device("cpu")
    if kind == "cpu":
        return torch.device("cpu")
    if kind == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError(
                f"device {spec!r} was asked for, but CUDA is not available here",
                hint="use 'cpu' or 'auto'; `hai info` lists the devices of this machine",
            )
        count = torch.cuda.device_count()
        index = int(index_text) if index_text else torch.cuda.current_device()
        if index >= count:
            raise DeviceError(
                f"device {spec!r} does not exist: this machine has {count} CUDA device(s)",
                hint=f"use cuda:0 … cuda:{count - 1}",
            )
        return torch.device("cuda", index)
    # mps
    if not torch.backends.mps.is_available():
        raise DeviceError(f"device {spec!r} is not available here", hint="use 'cpu' or 'auto'")
    return torch.device("mps")


def available_devices() -> list[str]:
    """Names of the devices torch can use here ("cpu" first); ["cpu"] without torch."""
    torch = optional("torch")
    devices = ["cpu"]
    if torch is None:
        return devices
    if torch.cuda.is_available():
        devices += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    if torch.backends.mps.is_available():
        devices.append("mps")
    return devices


def seed_everything(seed: int) -> None:
    """Seed python's ``random``, numpy's legacy global RNG and torch (all devices)."""
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 - the legacy global RNG is what we are seeding
    torch = optional("torch")
    if torch is not None:
        torch.manual_seed(seed)


@contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run the block with ``n`` torch intra-op CPU threads, then restore the previous number.

    ``None`` leaves the setting alone. Small networks train fastest on one thread, and with
    several threads on a machine whose cores are busy with other work, every tensor operation
    can wait a scheduler time slice for a descheduled thread (epochs become many times slower).

    >>> with torch_threads(1):
    ...     import torch; torch.get_num_threads()
    1
    """
    if n is None:
        yield
        return
    if not isinstance(n, numbers.Integral) or isinstance(n, bool) or n < 1:
        raise ValueError(f"the number of threads must be a positive integer, got {n!r}")
    torch = require("torch", extra="torch")
    before = torch.get_num_threads()
    torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(before)


class RngStreams:
    """Independent random generators derived from one seed and a stream name.

    The same (seed, name) always gives the same numbers, whatever other streams were used.

    >>> streams = RngStreams(7)
    >>> a = streams.numpy("noise").normal(size=3)
    >>> b = RngStreams(7).numpy("noise").normal(size=3)
    >>> bool((a == b).all())
    True
    """

    def __init__(self, seed: int) -> None:
        if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
        self.seed = seed

    def entropy(self, name: str, *keys: int) -> int:
        """A 64-bit integer determined by the seed, the stream name and optional integer keys."""
        text = ":".join([str(self.seed), name, *map(str, keys)])
        return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")

    def numpy(self, name: str, *keys: int) -> np.random.Generator:
        """A numpy ``Generator`` for stream ``name`` (and keys such as step or sample index)."""
        return np.random.default_rng(self.entropy(name, *keys))

    def torch(self, name: str, *keys: int, device: Any = "cpu") -> torch.Generator:
        """A ``torch.Generator`` on ``device`` for stream ``name`` (and optional integer keys)."""
        torch_mod = require("torch", extra="torch")
        generator = torch_mod.Generator(device=resolve_device(device))
        generator.manual_seed(self.entropy(name, *keys) & 0x7FFF_FFFF_FFFF_FFFF)
        return generator
