"""Pruning of the zoo's forecasters and the comparative pruning study.

Kiefer, Weyrauch, Öz, Streit, Götz, Debus, "A Comparative Study of Pruning Methods in
Transformer-based Time Series Forecasting", arXiv 2412.12883 (no public code is known):
unstructured magnitude pruning (:mod:`.unstructured`, ``torch.nn.utils.prune``), structured
pruning of attention heads and feed-forward channels (:mod:`.structured`, by hand: Torch-Pruning
is not installed here), fine-tuning (:mod:`.finetune`), measured costs (:mod:`.measure`) and the
resumable study runner (:mod:`.study`).
"""

from __future__ import annotations

from hai.forecast.pruning.finetune import finetune, training_batches
from hai.forecast.pruning.measure import Costs, count_flops, measure_costs, paired_latency, state_dict_bytes
from hai.forecast.pruning.structured import (
    TARGETS,
    StructuredPruningError,
    StructuredResult,
    prune_structured,
    supported_targets,
)
from hai.forecast.pruning.study import METHODS, StudyResult, StudySpec, run_study
from hai.forecast.pruning.unstructured import (
    SCOPES,
    UnstructuredResult,
    keep_masks,
    make_permanent,
    prunable_parameters,
    prune_unstructured,
    weight_sparsity,
)

__all__ = [
    "METHODS",
    "SCOPES",
    "TARGETS",
    "Costs",
    "StructuredPruningError",
    "StructuredResult",
    "StudyResult",
    "StudySpec",
    "UnstructuredResult",
    "count_flops",
    "finetune",
    "keep_masks",
    "make_permanent",
    "measure_costs",
    "paired_latency",
    "prunable_parameters",
    "prune_structured",
    "prune_unstructured",
    "run_study",
    "state_dict_bytes",
    "supported_targets",
    "training_batches",
    "weight_sparsity",
]
