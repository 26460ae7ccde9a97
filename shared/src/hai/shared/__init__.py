"""hai-shared: the small core every hai domain package builds on.

>>> from hai.shared import RngStreams, measure
>>> with measure(energy=False) as cost:
...     x = RngStreams(seed=1).numpy("demo").normal(size=100).mean()
>>> cost.wall_s >= 0
True
"""

from importlib import metadata as _metadata

try:
    __version__ = _metadata.version("hai-shared")
except _metadata.PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"

from hai.shared.checkpoint import Checkpoint, load_checkpoint, load_results, save_checkpoint, save_results
from hai.shared.demo import DemoContext, run_demos
from hai.shared.energy import EnergyCounter, Measurement, discover_sensors, measure
from hai.shared.errors import (
    CheckpointError,
    DeviceError,
    HaiError,
    InputError,
    MissingPackageError,
    NotConvergedError,
    OutputError,
)
from hai.shared.files import atomic_path, atomic_write, check_output_path, write_json, write_text
from hai.shared.progress import is_quiet, progress, set_quiet
from hai.shared.report import Figure, Section, Table
from hai.shared.runtime import RngStreams, available_devices, resolve_device, seed_everything, torch_threads

__all__ = [
    "Checkpoint",
    "CheckpointError",
    "DemoContext",
    "DeviceError",
    "EnergyCounter",
    "Figure",
    "HaiError",
    "InputError",
    "Measurement",
    "MissingPackageError",
    "NotConvergedError",
    "OutputError",
    "RngStreams",
    "Section",
    "Table",
    "__version__",
    "atomic_path",
    "atomic_write",
    "available_devices",
    "check_output_path",
    "discover_sensors",
    "is_quiet",
    "load_checkpoint",
    "load_results",
    "measure",
    "progress",
    "resolve_device",
    "run_demos",
    "save_checkpoint",
    "save_results",
    "seed_everything",
    "set_quiet",
    "torch_threads",
    "write_json",
    "write_text",
]
