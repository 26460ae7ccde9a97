"""hai-pet: PET simulation, GATE ROOT I/O, GATE's classical coincidence sorter and metrics.

From a simulated (or GATE-simulated) list of singles to photon-coincidence pairs, scored
against the truth at the pair level.

>>> from hai.pet import PointSource, pair_metrics, simulate, sort_coincidences
>>> sim = simulate("safir", [PointSource(activity_bq=1e6)], seconds=1e-2, seed=0)
>>> result = sort_coincidences(sim.singles, window_ns=4.0, policy="takeWinnerOfGoods",
...                            energy_window_kev=(350, 650))
>>> m = pair_metrics(result.coincidences, sim.singles)
>>> 0.9 < m.precision <= 1.0
True
"""

from importlib import metadata as _metadata
from typing import Any

try:
    __version__ = _metadata.version("hai-pet")
except _metadata.PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"

from hai.pet.gate_io import (
    GATE10_TO_GATE9,
    iterate_gate,
    read_gate,
    read_gate10_singles,
    read_singles,
    tree_names,
    write_gate,
)
from hai.pet.metrics import PairMetrics, pair_metrics, true_pairs
from hai.pet.scanner import PRESETS, Scanner, get_scanner
from hai.pet.simulate import (
    CylinderSource,
    LineSource,
    PointSource,
    Simulation,
    WaterCylinder,
    digitize,
    simulate,
)
from hai.pet.sorter import (
    DEFAULT_POLICY,
    POLICIES,
    SortResult,
    check_policy,
    coincidence_tree,
    sort_coincidences,
    sort_scw,
)
from hai.pet.spikes import (
    SpikeEncoding,
    SpikeMetrics,
    encode_spikes,
    spike_metrics,
    spikes_to_pairs,
    spikes_to_singles,
)
from hai.pet.tables import (
    COINCIDENCES_BRANCHES,
    HITS_BRANCHES,
    REQUIRED_SINGLES,
    SINGLES_BRANCHES,
    GateTree,
)

_LAZY = {
    name: "hai.pet.petnet"
    for name in (
        "PETNet",
        "PETNetModule",
        "LocalPETNetModule",
        "petnet_loss",
        "balanced_pos_weight",
        "shipped_model_path",
    )
}


def __getattr__(name: str) -> Any:
    """PETNet and its loss load torch and snntorch only when first used."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'hai.pet' has no attribute {name!r}")


__all__ = [
    "COINCIDENCES_BRANCHES",
    "DEFAULT_POLICY",
    "GATE10_TO_GATE9",
    "HITS_BRANCHES",
    "POLICIES",
    "PRESETS",
    "REQUIRED_SINGLES",
    "SINGLES_BRANCHES",
    "CylinderSource",
    "GateTree",
    "LineSource",
    "LocalPETNetModule",
    "PETNet",
    "PETNetModule",
    "PairMetrics",
    "PointSource",
    "Scanner",
    "Simulation",
    "SortResult",
    "SpikeEncoding",
    "SpikeMetrics",
    "WaterCylinder",
    "__version__",
    "balanced_pos_weight",
    "check_policy",
    "coincidence_tree",
    "digitize",
    "encode_spikes",
    "get_scanner",
    "iterate_gate",
    "pair_metrics",
    "petnet_loss",
    "read_gate",
    "read_gate10_singles",
    "read_singles",
    "shipped_model_path",
    "simulate",
    "sort_coincidences",
    "sort_scw",
    "spike_metrics",
    "spikes_to_pairs",
    "spikes_to_singles",
    "tree_names",
    "true_pairs",
    "write_gate",
]
