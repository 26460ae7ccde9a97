"""Energy of data-parallel training: sweep world size × global batch × local batch, measure
time and energy per rank, fit energy against device-hours.

Huber et al., "Energy Consumption in Parallel Neural Network Training", arXiv 2508.07706: energy
is about linear in GPU-hours, with a factor that depends on model, hardware and the samples
and updates per GPU-hour. Energy comes from :func:`hai.shared.measure` (RAPL, NVML); a sensor
that cannot be read is reported unavailable with its reason, never as 0 J.

>>> from hai.scale.energy import SweepSpec
>>> len(SweepSpec(world_sizes=(1, 2), global_batches=(64, 128, 256), local_batches=(16, 32)).points())
12
"""

from hai.scale.energy.analysis import LinearFit, fit_energy, report, report_figures
from hai.scale.energy.spec import WORKLOADS, SweepPoint, SweepSpec
from hai.scale.energy.sweep import collect_submitted, read_table, run_sweep, submit_sweep
from hai.scale.energy.workloads import AFNO2d, Workload, build_workload

__all__ = [
    "WORKLOADS",
    "AFNO2d",
    "LinearFit",
    "SweepPoint",
    "SweepSpec",
    "Workload",
    "build_workload",
    "collect_submitted",
    "fit_energy",
    "read_table",
    "report",
    "report_figures",
    "run_sweep",
    "submit_sweep",
]
