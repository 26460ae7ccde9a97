"""hai-grid: differentiable, batched AC power flow (DPF) in PyTorch on pandapower networks.

>>> from hai.grid.cases import load_case
>>> import hai.grid
>>> net = load_case("case14")
>>> info = hai.grid.runpp(net)  # fills net.res_bus, res_line, res_trafo, res_ext_grid, res_gen
>>> info.converged
True
"""

from importlib import metadata as _metadata

try:
    __version__ = _metadata.version("hai-grid")
except _metadata.PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"

from hai.grid.autopq.estimator import AutoPQ
from hai.grid.batch import BatchResult, solve_batch
from hai.grid.cases import load_case
from hai.grid.contingency import ContingencyResult, run_contingency
from hai.grid.dpf import DPFSettings, dpf_solve
from hai.grid.errors import PowerFlowNotConverged, UnsafeNetworkFile
from hai.grid.gradients import DifferentiableResult, solve_differentiable
from hai.grid.identification import IdentificationResult, identify_line_parameters
from hai.grid.jsonio import from_json
from hai.grid.network import CompiledNetwork, compile_network
from hai.grid.newton import NewtonResult, PowerFlowSystem, newton_raphson
from hai.grid.powerflow import PowerFlowInfo, runpp
from hai.grid.timeseries import run_timeseries

__all__ = [
    "AutoPQ",
    "BatchResult",
    "CompiledNetwork",
    "ContingencyResult",
    "DPFSettings",
    "DifferentiableResult",
    "IdentificationResult",
    "NewtonResult",
    "PowerFlowInfo",
    "PowerFlowNotConverged",
    "PowerFlowSystem",
    "UnsafeNetworkFile",
    "__version__",
    "compile_network",
    "dpf_solve",
    "from_json",
    "identify_line_parameters",
    "load_case",
    "newton_raphson",
    "run_contingency",
    "run_timeseries",
    "runpp",
    "solve_batch",
    "solve_differentiable",
]
