"""AB-training: low-rank data-parallel training with less communication.

Weight matrices are factored W ≈ A·B (:mod:`~hai.scale.abtrain.lowrank`) and trained in
independent groups of processes, half training A with B frozen and half B with A frozen, with
periodic synchronisation of all ranks (:mod:`~hai.scale.abtrain.schedule`). Coquelin et al.,
"Harnessing Orthogonality to Train Low-Rank Neural Networks" (AB-training), arXiv 2405.01067;
reference code ``Helmholtz-AI-Energy/AB-Training`` (``madonna``).

>>> import torch
>>> from torch import nn
>>> from hai.scale.abtrain import to_low_rank, to_full_rank
>>> model = nn.Sequential(nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 4))
>>> summary = to_low_rank(model, cutoff=0.1)
>>> [(name, rows, cols) for name, rows, cols, _ in summary.layers]
[('0', 16, 16), ('2', 4, 16)]
>>> type(model[0]).__name__, summary.compression_ratio > 0
('ABLinear', True)
>>> to_full_rank(model)
2
"""

from hai.scale.abtrain.lowrank import (
    ABConv2d,
    ABLinear,
    LowRankSummary,
    agree_rank,
    compression_ratio,
    rank_for_cutoff,
    svd_factors,
    to_full_rank,
    to_low_rank,
)
from hai.scale.abtrain.schedule import SYNC_MODES, ABGroups, ABSchedule

__all__ = [
    "SYNC_MODES",
    "ABConv2d",
    "ABGroups",
    "ABLinear",
    "ABSchedule",
    "LowRankSummary",
    "agree_rank",
    "compression_ratio",
    "rank_for_cutoff",
    "svd_factors",
    "to_full_rank",
    "to_low_rank",
]
