"""The pruning study runner: zoo models × pruning methods × sparsities, one table, resumable.

Repeats the design of Kiefer et al., "A Comparative Study of Pruning Methods in
Transformer-based Time Series Forecasting" (arXiv 2412.12883; no public code is known): each
model is trained once on the long-horizon protocol (:mod:`hai.forecast.zoo.protocol`), then for
each method (``unstructured``: global magnitude pruning; ``structured``: attention heads and
feed-forward channels, :mod:`hai.forecast.pruning.structured`) and sparsity a copy is pruned,
scored on the test windows (MSE/MAE in scaled units), its costs measured
(:mod:`hai.forecast.pruning.measure`; the latency ratio from alternating
timings of the dense and the pruned network, ``paired_latency``), fine-tuned for
``finetune_epochs`` and scored again.

Every cell is written atomically to ``OUT/cells/<model>__<method>__<sparsity>.json`` as it
finishes, and a dense model's weights to ``OUT/dense/<model>.pt``; run again with the same
folder and settings, the study resumes (finished cells are read, not recomputed; failed ones
are tried again). A cell that fails with a user error (e.g. a structured pruning the model's
graph cannot do) is recorded with its error and the study goes on. The table (``table.csv``,
``table.json``) is rewritten after every cell.
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd  # type: ignore[import-untyped]
import torch

from hai.forecast.neural import NeuralForecaster
from hai.forecast.pruning.finetune import finetune, training_batches
from hai.forecast.pruning.measure import Costs, measure_costs, paired_latency
from hai.forecast.pruning.structured import (
    TARGETS,
    StructuredPruningError,
    check_targets,
    prune_structured,
    supported_targets,
)
from hai.forecast.pruning.unstructured import SCOPES, check_sparsity, prune_unstructured, weight_sparsity
from hai.forecast.zoo import ZOO, WindowForecaster, make_forecaster
from hai.forecast.zoo import protocol as P
from hai.shared import HaiError, InputError, atomic_path, atomic_write
from hai.shared.progress import progress

METHODS: tuple[str, ...] = ("unstructured", "structured")


@dataclass(frozen=True)
class StudySpec:
    """The settings of a study (saved as ``spec.json``; a resumed study must match them)."""

    models: tuple[str, ...] = ("patchtst", "autoformer")
    methods: tuple[str, ...] = METHODS
    sparsities: tuple[float, ...] = (0.0, 0.5, 0.9)
    finetune_epochs: int = 3
    epochs: int = 10
    cycle_length: int = 24
    history_cycles: int = 4
    horizon_cycles: int = 4
    stride: int = 1
    eval_stride: int | None = None
    scope: str = "global"
    structured_targets: tuple[str, ...] | None = None
    lr: float = 3e-3
    seed: int = 0
    latency_batch: int = 32
    latency_repeats: int = 20
    data: str = "data"
    model_params: dict[str, dict[str, Any]] = field(default_factory=dict)

    def check(self) -> StudySpec:
        models = tuple(str(m).strip().lower() for m in self.models)
        for m in models:
            if m not in ZOO:
                raise InputError(f"unknown zoo model {m!r}", hint=f"use one of {', '.join(ZOO)}")
        for method in self.methods:
            if method not in METHODS:
                raise InputError(
                    f"unknown pruning method {method!r}", hint=f"use one of {', '.join(METHODS)}"
                )
        if self.scope not in SCOPES:
            raise InputError(f"unknown pruning scope {self.scope!r}", hint=f"use one of {', '.join(SCOPES)}")
        sparsities = tuple(check_sparsity(s) for s in self.sparsities)
        targets = None if self.structured_targets is None else tuple(self.structured_targets)
        for t in targets or ():
            if t not in TARGETS:
                raise InputError(
                    f"unknown structured pruning target {t!r}", hint=f"use one of {', '.join(TARGETS)}"
                )
        if targets is not None and not targets:
            raise InputError("structured_targets is empty", hint=f"name some of {', '.join(TARGETS)} or None")
        if not models or not self.methods or not sparsities:
            raise InputError("a study needs at least one model, method and sparsity")
        for name, value in (("finetune_epochs", self.finetune_epochs), ("epochs", self.epochs)):
            if not isinstance(value, int) or value < 0:
                raise InputError(f"{name} must be an integer of at least 0, got {value!r}")
        return StudySpec(
            **{
                **asdict(self),
                "models": models,
                "methods": tuple(self.methods),
                "sparsities": sparsities,
                "structured_targets": targets,
            }
        )

    @property
    def horizon(self) -> int:
        return self.cycle_length * self.horizon_cycles

    @property
    def history(self) -> int:
        return self.cycle_length * self.history_cycles


def cell_key(model: str, method: str, sparsity: float) -> str:
    return f"{model}__{method}__{sparsity:g}"


def _write_json(path: Path, data: Any) -> None:
    with atomic_write(path) as fh:
        json.dump(data, fh, indent=1, default=float)


@dataclass
class _Dense:
    model: NeuralForecaster
    scores: P.Scores
    naive: P.Scores
    costs: Costs
    inputs: dict[str, torch.Tensor]


def _build(name: str, spec: StudySpec, split: P.ProtocolSplit) -> NeuralForecaster:
    params: dict[str, Any] = {
        "cycle_length": spec.cycle_length,
        "history_cycles": spec.history_cycles,
        "horizon_cycles": spec.horizon_cycles,
        "epochs": spec.epochs,
        "lr": spec.lr,
        "validation_fraction": split.validation_fraction,
        "seed": spec.seed,
        "period": None,
    }
    if issubclass(ZOO[name], WindowForecaster):
        params["stride"] = spec.stride
    params.update(spec.model_params.get(name, {}))
    return make_forecaster(name, small=True, **params)


def _costs(model: NeuralForecaster, inputs: dict[str, torch.Tensor], spec: StudySpec) -> Costs:
    net = model.net_
    assert net is not None
    return measure_costs(
        net,
        lambda: model._forward(net, inputs),
        len(next(iter(inputs.values()))),
        repeats=spec.latency_repeats,
    )


def _dense(name: str, spec: StudySpec, split: P.ProtocolSplit, origins: np.ndarray, out: Path) -> _Dense:
    model = _build(name, spec, split)
    weights = out / "dense" / f"{name}.pt"
    if weights.is_file():  # resume: the same scaler and network, the trained weights read back
        model.set_params(epochs=0).fit(split.fit_part)
        assert model.net_ is not None
        model.net_.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
        model.set_params(epochs=spec.epochs)
    else:
        model.fit(split.fit_part)
        assert model.net_ is not None
        with atomic_path(weights) as tmp:
            torch.save(model.net_.state_dict(), tmp)
    scores = P.evaluate(model, split.frame, origins)
    target = P.truth(split.frame, origins, model.horizon)
    naive = P.scaled_scores(
        P.seasonal_naive(split.frame, origins, model.horizon, spec.cycle_length), target, model.scaler_.scale_
    )
    inputs, _ = model._inputs(split.frame, origins[: spec.latency_batch])
    return _Dense(model, scores, naive, _costs(model, inputs, spec), inputs)


def _cell(
    name: str,
    method: str,
    s: float,
    dense: _Dense,
    spec: StudySpec,
    split: P.ProtocolSplit,
    origins: np.ndarray,
    batches: Any,
) -> dict[str, Any]:
    model = copy.deepcopy(dense.model)
    net = model.net_
    assert net is not None
    masks = None
    targets: tuple[str, ...] = ()
    if method == "unstructured":
        masks = prune_unstructured(net, s, scope=spec.scope).masks
    else:
        targets = spec.structured_targets or supported_targets(net)
        if not targets:
            raise StructuredPruningError(
                f"{type(net).__name__} has no attention heads or FFN channels this study can prune"
            )
        prune_structured(net, s, targets=targets)
    pruned = P.evaluate(model, split.frame, origins)
    costs = _costs(model, dense.inputs, spec)
    history = finetune(
        model, split.fit_part, spec.finetune_epochs, masks=masks, seed=spec.seed, batches=batches
    )
    tuned = P.evaluate(model, split.frame, origins)
    d = dense.costs
    dense_net, inputs = dense.model.net_, dense.inputs
    assert dense_net is not None
    latency_dense, latency_pruned = paired_latency(
        (dense_net, lambda: dense.model._forward(dense_net, inputs)),
        (net, lambda: model._forward(net, inputs)),
        repeats=spec.latency_repeats,
    )
    return {
        "model": name,
        "method": method,
        "sparsity": s,
        "status": "ok",
        "targets": ",".join(targets),
        "weight_sparsity": weight_sparsity(net),
        "parameter_fraction": costs.nonzero_parameters / d.nonzero_parameters,
        "mse_dense": dense.scores.mse,
        "mae_dense": dense.scores.mae,
        "mse_pruned": pruned.mse,
        "mae_pruned": pruned.mae,
        "mse_finetuned": tuned.mse,
        "mae_finetuned": tuned.mae,
        "mse_seasonal_naive": dense.naive.mse,
        "mae_seasonal_naive": dense.naive.mae,
        "mase_dense": dense.scores.mae / dense.naive.mae,
        "finetune_best_epoch": history.best_epoch,
        "n_test_windows": pruned.n_windows,
        **{k: v for k, v in costs.to_dict().items()},
        "flops_ratio": d.flops / costs.flops if costs.flops else math.nan,
        "macs_ratio": d.macs / costs.macs if costs.macs else math.nan,
        "latency_paired_dense_s": latency_dense,
        "latency_paired_s": latency_pruned,
        "latency_ratio": latency_dense / latency_pruned,
        "size_ratio": d.size_bytes / costs.size_bytes,
        "sparse_size_ratio": d.size_bytes / costs.sparse_size_bytes,
    }


@dataclass(frozen=True)
class StudyResult:
    """The table (one row per cell) and where it was written."""

    table: pd.DataFrame
    out: Path
    spec: StudySpec
    figures: list[Path]


def write_table(cells: list[dict[str, Any]], out: Path, spec: StudySpec) -> pd.DataFrame:
    table = pd.DataFrame(cells)
    with atomic_write(out / "table.csv") as fh:
        table.to_csv(fh, index=False)
    _write_json(out / "table.json", {"spec": asdict(spec), "rows": cells})
    return table


def run_study(
    y: Any, out: str | Path, spec: StudySpec | None = None, *, show_progress: bool = True
) -> StudyResult:
    """Run (or resume) the study ``spec`` on the series ``y``; the results go to the folder ``out``."""
    spec = (spec or StudySpec()).check()
    out = Path(out)
    split = P.split(y, spec.cycle_length)
    stride = spec.eval_stride or spec.cycle_length
    origins = P.window_origins(len(split.frame), split.test_start, spec.history, spec.horizon, stride)
    spec_path = out / "spec.json"
    saved = asdict(spec)
    if spec_path.is_file():
        # A setting added after the study was saved reads as its default (older spec.json files).
        before = {**json.loads(json.dumps(asdict(StudySpec()))), **json.loads(spec_path.read_text())}
        same = {k: v for k, v in before.items() if k not in ("models", "methods", "sparsities")}
        now = {
            k: v
            for k, v in json.loads(json.dumps(saved)).items()
            if k not in ("models", "methods", "sparsities")
        }
        if same != now:
            changed = sorted(k for k in now if now.get(k) != same.get(k))
            raise InputError(
                f"{out} holds a study with other settings ({', '.join(changed)})",
                hint="use another --out folder, or the same settings to resume",
            )
    if "structured" in spec.methods and spec.structured_targets:
        _check_structured(spec, split)
    _write_json(spec_path, saved)
    cells: dict[str, dict[str, Any]] = {}
    cell_dir = out / "cells"
    for path in sorted(cell_dir.glob("*.json")) if cell_dir.is_dir() else []:
        cell = json.loads(path.read_text())
        if cell.get("status") == "ok":
            cells[path.stem] = cell
    todo = [(m, meth, s) for m in spec.models for meth in spec.methods for s in spec.sparsities]
    bar: Any = progress(total=len(todo), desc="prune-study", unit="cell") if show_progress else _NoBar()
    try:
        for name in spec.models:
            keys = [cell_key(name, meth, s) for meth in spec.methods for s in spec.sparsities]
            if all(k in cells for k in keys):
                bar.update(len(keys))
                continue
            dense = _dense(name, spec, split, origins, out)
            batches = training_batches(dense.model, split.fit_part)
            for method in spec.methods:
                for s in spec.sparsities:
                    key = cell_key(name, method, s)
                    if key not in cells:
                        try:
                            cells[key] = _cell(name, method, s, dense, spec, split, origins, batches)
                        except HaiError as exc:
                            cells[key] = {
                                "model": name,
                                "method": method,
                                "sparsity": s,
                                "status": "failed",
                                "error": str(exc),
                            }
                        _write_json(cell_dir / f"{key}.json", cells[key])
                        write_table([cells[k] for k in _ordered(cells, spec)], out, spec)
                    bar.update(1)
    finally:
        bar.close()
    table = write_table([cells[k] for k in _ordered(cells, spec)], out, spec)
    from hai.forecast.pruning.figures import study_figures

    return StudyResult(table, out, spec, study_figures(table, out))


def _check_structured(spec: StudySpec, split: P.ProtocolSplit) -> None:
    """Refuse, before any training, structured targets a model's graph does not allow."""
    assert spec.structured_targets
    for name in spec.models:
        model = _build(name, spec, split).set_params(epochs=0).fit(split.fit_part)
        assert model.net_ is not None
        try:
            check_targets(model.net_, spec.structured_targets)
        except StructuredPruningError as exc:
            raise StructuredPruningError(f"{name}: {exc.message}", hint=exc.hint) from None


class _NoBar:
    def update(self, n: int = 1) -> None:
        del n

    def close(self) -> None:
        pass


def _ordered(cells: dict[str, dict[str, Any]], spec: StudySpec) -> list[str]:
    order = [cell_key(m, meth, s) for m in spec.models for meth in spec.methods for s in spec.sparsities]
    return [k for k in order if k in cells]


def summary_rows(table: pd.DataFrame, columns: Sequence[str] = ()) -> list[dict[str, Any]]:
    """The table's rows as dictionaries (for ``--json``)."""
    cols = list(columns) or list(table.columns)
    return [{c: row.get(c) for c in cols} for row in table.to_dict(orient="records")]
