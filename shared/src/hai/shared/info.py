"""``hai info``: what is installed and what this machine can do."""

from __future__ import annotations

import platform
from dataclasses import dataclass, field
from typing import Any

from hai.shared import plugins
from hai.shared._optional import optional
from hai.shared.energy import discover_sensors
from hai.shared.runtime import available_devices


@dataclass
class Info:
    python: str
    platform: str
    distributions: dict[str, str]
    commands: dict[str, str]
    demos: dict[str, str]
    torch: str | None
    devices: list[str]
    energy_sources: list[str]
    energy_unavailable: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def collect_info() -> Info:
    """Gather versions, devices and energy sensors (reads no large state, starts no GPU work)."""
    torch = optional("torch")
    sensors = discover_sensors()
    return Info(
        python=platform.python_version(),
        platform=platform.platform(),
        distributions=plugins.hai_distributions(),
        commands={name: p.distribution for name, p in plugins.commands().items()},
        demos={name: p.distribution for name, p in plugins.demos().items()},
        torch=getattr(torch, "__version__", None),
        devices=available_devices(),
        energy_sources=[s.name for s in sensors.sources],
        energy_unavailable=sensors.unavailable,
    )


def format_info(info: Info) -> str:
    lines = ["hai distributions:"]
    lines += [f"  {name:<16} {version}" for name, version in info.distributions.items()]
    lines.append(f"python:   {info.python} ({info.platform})")
    lines.append(f"torch:    {info.torch or 'not installed (pip install torch)'}")
    lines.append(f"devices:  {', '.join(info.devices)}")
    commands = ", ".join(f"hai {n}" for n in info.commands) or "none (install a domain package)"
    lines.append(f"commands: {commands}")
    lines.append(f"demos:    {', '.join(info.demos) or 'none'}")
    lines.append("energy sensors:")
    lines += [f"  {name:<24} readable" for name in info.energy_sources]
    lines += [f"  {name:<24} unavailable: {why}" for name, why in info.energy_unavailable.items()]
    return "\n".join(lines)
