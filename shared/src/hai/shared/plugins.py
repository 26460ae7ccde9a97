"""What is installed: hai distributions, their `hai` subcommands and their demos.

Domains register through entry points, so installing a distribution is all it takes:

.. code-block:: toml

    [project.entry-points."hai.commands"]
    grid = "hai.grid.cli:register"     # register(parser: argparse.ArgumentParser) -> None
    [project.entry-points."hai.demos"]
    grid = "hai.grid.demo:run"         # run(context: DemoContext) -> Section
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import metadata
from typing import Any

COMMANDS_GROUP = "hai.commands"
DEMOS_GROUP = "hai.demos"

# The domains of the hai family and the distribution that provides each, so that a command
# for a domain that is not installed can say what to install.
KNOWN_DOMAINS = {
    "grid": "hai-grid",
    "photonics": "hai-photonics",
    "pet": "hai-pet",
    "forecast": "hai-forecast",
    "scale": "hai-scale",
}


@dataclass(frozen=True)
class Plugin:
    """One registered command group or demo: its name, its distribution and how to load it."""

    name: str
    distribution: str
    version: str
    entry_point: metadata.EntryPoint

    def load(self) -> Any:
        return self.entry_point.load()


def _plugins(group: str) -> dict[str, Plugin]:
    found: dict[str, Plugin] = {}
    for ep in metadata.entry_points(group=group):
        dist = getattr(ep, "dist", None)
        found.setdefault(
            ep.name,
            Plugin(
                name=ep.name,
                distribution=dist.metadata["Name"] if dist is not None else "?",
                version=dist.version if dist is not None else "?",
                entry_point=ep,
            ),
        )
    return dict(sorted(found.items()))


def commands() -> dict[str, Plugin]:
    """Subcommand groups registered under ``hai.commands``, by name."""
    return _plugins(COMMANDS_GROUP)


def demos() -> dict[str, Plugin]:
    """Demos registered under ``hai.demos``, by domain name."""
    return _plugins(DEMOS_GROUP)


def hai_distributions() -> dict[str, str]:
    """Installed distributions of the hai family (``hai-*``), name → version."""
    found = {}
    for dist in metadata.distributions():
        name = (dist.metadata["Name"] or "").strip()
        if name.lower().replace("_", "-").startswith("hai-"):
            found[name] = dist.version
    return dict(sorted(found.items()))
