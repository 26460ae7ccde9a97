"""Save and load fitted forecasters: safetensors weights plus JSON parameters (hai.shared format).

Nothing is unpickled: the model class is looked up by name in :data:`MODELS`, rebuilt from its
parameters, and the network weights and scaler are loaded into it.

>>> import tempfile, pathlib
>>> from hai.forecast import SameTypeMean, synthetic_cyclic
>>> y = synthetic_cyclic(n_cycles=21)
>>> path = pathlib.Path(tempfile.mkdtemp()) / "model.safetensors"
>>> save_model(SameTypeMean(k=2).fit(y), path)
>>> load_model(path).predict(y).equals(SameTypeMean(k=2).fit(y).predict(y))
True
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import pandas as pd  # type: ignore[import-untyped]
import torch

from hai.forecast.base import Forecaster
from hai.forecast.baselines import BASELINES
from hai.forecast.data import Scaler
from hai.forecast.neural import NeuralForecaster
from hai.forecast.recycle import ReCycle
from hai.forecast.training import EpochRecord
from hai.forecast.transformer import StepTransformer
from hai.shared import CheckpointError, load_checkpoint, resolve_device, save_checkpoint

#: Model classes by name (``model.name``): ReCycle, the token-per-step transformer and the baselines.
MODELS: dict[str, type[Forecaster]] = {"recycle": ReCycle, "transformer": StepTransformer, **BASELINES}


def save_model(model: Forecaster, path: str | os.PathLike[str]) -> None:
    """Write a fitted ``model`` to ``path`` (a ``.safetensors`` file), atomically."""
    model._check_fitted()
    tensors: dict[str, Any] = {"freq_ns": np.array([model.freq_.value], dtype=np.int64)}
    extra: dict[str, Any] = {}
    if isinstance(model, NeuralForecaster):
        tensors["scaler.offset"] = torch.as_tensor(model.scaler_.offset_)
        tensors["scaler.scale"] = torch.as_tensor(model.scaler_.scale_)
        if model.net_ is not None:
            tensors.update({f"net.{k}": v for k, v in model.net_.state_dict().items()})
        extra = {
            "history": [r.to_dict() for r in model.history_],
            "best_epoch": model.best_epoch_,
            "stopped_early": model.stopped_early_,
            "epoch_time_s": model.epoch_time_s_,
            "epoch_cpu_s": model.epoch_cpu_s_,
        }
        if isinstance(model, ReCycle):
            extra["baseline_choice"] = model.baseline_.name  # what baseline="auto" chose
            extra["baseline_scores"] = dict(model.baseline_scores_)
    config = {
        "model": model.name,
        "params": model.get_params(),
        "columns": model.columns_,
        "series_name": model.series_name_,
    }
    seed = getattr(model, "seed", None)
    save_checkpoint(path, tensors, config=config, seed=seed, extra=extra)


def load_model(path: str | os.PathLike[str], *, device: str | None = None) -> Forecaster:
    """Load a model written by :func:`save_model` (onto ``device``, default: the saved one)."""
    ckpt = load_checkpoint(path, framework="torch")
    name = ckpt.config.get("model")
    if name not in MODELS:
        raise CheckpointError(f"{path} holds an unknown model {name!r}", hint=f"known: {', '.join(MODELS)}")
    params = dict(ckpt.config.get("params") or {})
    if device is not None and "device" in params:
        params["device"] = device
    try:
        model = MODELS[name](**params)
    except TypeError as exc:
        raise CheckpointError(f"{path} has parameters this hai-forecast does not accept: {exc}") from exc
    freq = pd.Timedelta(int(ckpt.tensors["freq_ns"][0]), unit="ns")
    columns = list(ckpt.config["columns"])
    _restore(model, freq, columns, ckpt.config.get("series_name"))
    if isinstance(model, NeuralForecaster):
        scaler = Scaler(model.scaling)
        scaler.offset_ = ckpt.tensors["scaler.offset"].double().numpy()
        scaler.scale_ = ckpt.tensors["scaler.scale"].double().numpy()
        model.scaler_ = scaler
        model.device_ = resolve_device(model.device)
        if isinstance(model, ReCycle):
            model.baseline_ = model._make_baseline(ckpt.extra.get("baseline_choice"))
            model.baseline_scores_ = dict(ckpt.extra.get("baseline_scores") or {})
            _restore(model.baseline_, freq, columns, ckpt.config.get("series_name"))
        model.net_ = None
        if model.uses_network:
            net = model._build_net()
            state = {k[4:]: v for k, v in ckpt.tensors.items() if k.startswith("net.")}
            try:
                net.load_state_dict(state)
            except RuntimeError as exc:
                raise CheckpointError(f"{path}: the weights do not fit the model: {exc}") from exc
            model.net_ = net.to(model.device_).eval()
        model.history_ = [EpochRecord(**r) for r in ckpt.extra.get("history", [])]
        model.best_epoch_ = int(ckpt.extra.get("best_epoch", 0))
        model.stopped_early_ = bool(ckpt.extra.get("stopped_early", False))
        model.epoch_time_s_ = float(ckpt.extra.get("epoch_time_s") or float("nan"))
        model.epoch_cpu_s_ = float(ckpt.extra.get("epoch_cpu_s") or float("nan"))
    return model


def _restore(model: Forecaster, freq: pd.Timedelta, columns: list[str], series_name: Any) -> None:
    model._check_params()
    model.freq_ = freq
    model.columns_ = columns
    model.n_features_ = len(columns)
    model.series_name_ = series_name
