"""Wall time, CPU time and energy of a block of code, measured, never estimated.

Energy comes from hardware counters: RAPL package and DRAM zones through
``/sys/class/powercap`` (Intel and AMD CPUs, where the files are readable) and NVIDIA GPUs
through NVML (``nvidia-ml-py``). A source that cannot be read is listed in
``Measurement.unavailable`` with the reason — it is never reported as 0 J, and nothing is
inferred from TDP or utilisation. Counters are sampled by a background thread (every second by
default) so that a counter that wraps around during a long run is still summed correctly.

Why not perun or codecarbon: perun needs its own launcher and writes its own result folders;
codecarbon falls back to TDP estimates. Here we need a small in-process context manager whose
numbers are measurements or explicitly absent.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from hai.shared._optional import optional

POWERCAP_ROOT = Path("/sys/class/powercap")


class EnergySource(Protocol):
    """A cumulative energy counter in joules. ``wrap_j`` is its range, or None if it never wraps."""

    name: str
    wrap_j: float | None

    def read_j(self) -> float: ...


@dataclass
class EnergyCounter:
    """An energy source from any callable that returns a cumulative reading in joules.

    >>> readings = iter([10.0, 12.5])
    >>> counter = EnergyCounter("meter", lambda: next(readings))
    >>> counter.read_j(), counter.read_j()
    (10.0, 12.5)
    """

    name: str
    read: Callable[[], float]
    wrap_j: float | None = None

    def read_j(self) -> float:
        return float(self.read())


@dataclass
class RaplZone:
    """One powercap RAPL zone (``energy_uj``, wrapping at ``max_energy_range_uj``)."""

    name: str
    path: Path
    wrap_j: float | None = None

    def read_j(self) -> float:
        return int((self.path / "energy_uj").read_text()) / 1e6


@dataclass
class NvmlGpu:
    """Total energy of one NVIDIA GPU since the driver loaded (millijoules, 64-bit, no wrap)."""

    name: str
    handle: Any
    nvml: Any
    wrap_j: float | None = None

    def read_j(self) -> float:
        return float(self.nvml.nvmlDeviceGetTotalEnergyConsumption(self.handle)) / 1e3


@dataclass(frozen=True)
class SensorReport:
    """Which energy sources this machine has: readable ones and the reasons for the others."""

    sources: list[EnergySource]
    unavailable: dict[str, str]


def discover_rapl(root: Path = POWERCAP_ROOT) -> tuple[list[EnergySource], dict[str, str]]:
    """Readable RAPL package and DRAM zones under ``root``, and why others cannot be read."""
    if not root.is_dir():
        return [], {"rapl": f"{root} does not exist (no RAPL powercap interface on this machine)"}
    sources: list[EnergySource] = []
    unavailable: dict[str, str] = {}
    for zone in sorted(root.glob("*rapl:*")):
        try:
            zone_name = (zone / "name").read_text().strip()
        except OSError:
            continue
        parent = zone.name.split(":")
        # Package zones sit at depth 2 (intel-rapl:0); their DRAM sub-zone at depth 3. Core,
        # uncore and psys are skipped: they overlap with the package and would double count.
        is_package = zone_name.startswith("package") and len(parent) == 2
        is_dram = zone_name == "dram"
        if not (is_package or is_dram):
            continue
        label = f"rapl:{zone.name.split(':', 1)[1]}:{zone_name}"
        try:
            wrap = (int((zone / "max_energy_range_uj").read_text()) + 1) / 1e6
            source = RaplZone(label, zone, wrap)
            source.read_j()
        except PermissionError:
            unavailable[label] = (
                f"{zone / 'energy_uj'} is not readable by this user (root-only since Linux 5.10; "
                "an administrator can grant read access)"
            )
            continue
        except (OSError, ValueError) as exc:
            unavailable[label] = f"{zone} cannot be read: {exc}"
            continue
        sources.append(source)
    if not sources and not unavailable:
        unavailable["rapl"] = f"no RAPL package or DRAM zone under {root}"
    return sources, unavailable


def discover_nvml() -> tuple[list[EnergySource], dict[str, str]]:
    """NVIDIA GPUs whose energy counter NVML can read, and why others cannot be read."""
    nvml = optional("pynvml")
    if nvml is None:
        return [], {"nvml": "nvidia-ml-py is not installed (pip install 'hai-shared[nvml]')"}
    try:
        nvml.nvmlInit()
        count = nvml.nvmlDeviceGetCount()
    except Exception as exc:  # NVMLError subclasses differ between driver versions
        return [], {"nvml": f"NVML cannot start (no NVIDIA driver?): {exc}"}
    sources: list[EnergySource] = []
    unavailable: dict[str, str] = {}
    for index in range(count):
        label = f"nvml:gpu{index}"
        try:
            gpu = NvmlGpu(label, nvml.nvmlDeviceGetHandleByIndex(index), nvml)
            gpu.read_j()
        except Exception as exc:
            unavailable[label] = f"GPU {index} does not report energy: {exc}"
            continue
        sources.append(gpu)
    if count == 0:
        unavailable["nvml"] = "NVML found no GPU"
    return sources, unavailable


def discover_sensors(powercap_root: Path = POWERCAP_ROOT) -> SensorReport:
    """All energy sources readable here (RAPL, NVML), with reasons for the unreadable ones."""
    rapl, rapl_missing = discover_rapl(powercap_root)
    gpus, gpu_missing = discover_nvml()
    return SensorReport([*rapl, *gpus], {**rapl_missing, **gpu_missing})


@dataclass
class Measurement:
    """What :func:`measure` recorded. ``energy_j`` holds only sources that were really read."""

    wall_s: float = float("nan")
    cpu_s: float = float("nan")
    energy_j: dict[str, float] = field(default_factory=dict)
    unavailable: dict[str, str] = field(default_factory=dict)

    @property
    def total_energy_j(self) -> float | None:
        """The sum over measured sources, or None when no source could be read."""
        return sum(self.energy_j.values()) if self.energy_j else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "wall_s": self.wall_s,
            "cpu_s": self.cpu_s,
            "energy_j": dict(self.energy_j),
            "total_energy_j": self.total_energy_j,
            "energy_unavailable": dict(self.unavailable),
        }


class _Accumulator:
    """Sums the increments of one counter, adding the counter range when it wraps."""

    def __init__(self, source: EnergySource) -> None:
        self.source = source
        self.last = source.read_j()
        self.total = 0.0
        self.failure: str | None = None

    def update(self) -> None:
        if self.failure is not None:
            return
        try:
            value = self.source.read_j()
        except (OSError, ValueError) as exc:
            self.failure = f"reading failed during the measurement: {exc}"
            return
        delta = value - self.last
        if delta < 0:
            if self.source.wrap_j is None:
                self.failure = "the counter went backwards (reset) during the measurement"
                return
            delta += self.source.wrap_j
        self.total += delta
        self.last = value


def _cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


@contextmanager
def measure(
    sources: Sequence[EnergySource] | None = None,
    *,
    energy: bool = True,
    interval_s: float = 1.0,
) -> Iterator[Measurement]:
    """Measure wall time, CPU time (this process and waited-for children) and energy.

    ``sources`` defaults to every sensor found by :func:`discover_sensors`. The yielded
    :class:`Measurement` is filled in when the block ends, also when it raises.

    >>> with measure(energy=False) as m:
    ...     _ = sum(range(1000))
    >>> m.wall_s >= 0 and m.energy_j == {}
    True
    """
    result = Measurement()
    if not energy:
        active: list[EnergySource] = []
    elif sources is None:
        report = discover_sensors()
        active, result.unavailable = list(report.sources), dict(report.unavailable)
    else:
        active = list(sources)
    accumulators: list[_Accumulator] = []
    for source in active:
        try:
            accumulators.append(_Accumulator(source))
        except (OSError, ValueError) as exc:
            result.unavailable[source.name] = f"cannot be read: {exc}"
    stop = threading.Event()
    lock = threading.Lock()

    def sample() -> None:
        while not stop.wait(interval_s):
            with lock:
                for acc in accumulators:
                    acc.update()

    sampler = threading.Thread(target=sample, name="hai-energy", daemon=True)
    if accumulators:
        sampler.start()
    wall0, cpu0 = time.perf_counter(), _cpu_seconds()
    try:
        yield result
    finally:
        result.wall_s = time.perf_counter() - wall0
        result.cpu_s = _cpu_seconds() - cpu0
        stop.set()
        if accumulators:
            sampler.join()
        for acc in accumulators:
            acc.update()
            if acc.failure is None and acc.total <= 0.0:
                # A counter that never moved was not measuring this work (a stub, a frozen
                # sensor, a block shorter than its update period): 0 J would be a false reading.
                result.unavailable[acc.source.name] = "counter did not advance during the measurement"
            elif acc.failure is None:
                result.energy_j[acc.source.name] = acc.total
            else:
                result.unavailable[acc.source.name] = acc.failure
