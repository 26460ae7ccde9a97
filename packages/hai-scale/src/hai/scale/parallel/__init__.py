"""Sampling parallelism for BNNs and its hybrid with data parallelism, on ``torch.distributed``."""

from hai.scale.parallel.engine import GroupSum, MonteCarlo, SamplingParallel, world
from hai.scale.parallel.launch import add_bnn_arguments, init_distributed, launch, worker_main
from hai.scale.parallel.training import (
    COVERAGE_LEVEL,
    LOSSES,
    BNNConfig,
    BNNEpoch,
    BNNResult,
    build_loss,
    build_model,
    train_bnn,
)
from hai.scale.parallel.workload import (
    MODES,
    Workload,
    local_workload,
    shards,
    split_range,
    workload,
    workloads,
)

__all__ = [
    "COVERAGE_LEVEL",
    "LOSSES",
    "MODES",
    "BNNConfig",
    "BNNEpoch",
    "BNNResult",
    "GroupSum",
    "MonteCarlo",
    "SamplingParallel",
    "Workload",
    "add_bnn_arguments",
    "build_loss",
    "build_model",
    "init_distributed",
    "launch",
    "local_workload",
    "shards",
    "split_range",
    "train_bnn",
    "worker_main",
    "workload",
    "workloads",
    "world",
]
