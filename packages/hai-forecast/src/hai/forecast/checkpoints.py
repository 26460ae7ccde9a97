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

import inspect
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
from hai.forecast.regression import REGRESSIONS, GradientBoostedLags, RidgeARX
from hai.forecast.training import EpochRecord
from hai.forecast.transformer import StepTransformer
from hai.shared import CheckpointError, HaiError, load_checkpoint, resolve_device, save_checkpoint

#: Model classes by name (``model.name``): ReCycle, the token-per-step transformer and the baselines.
MODELS: dict[str, type[Forecaster]] = {
    "recycle": ReCycle,
    "transformer": StepTransformer,
    **BASELINES,
    **REGRESSIONS,
}


def save_model(model: Forecaster, path: str | os.PathLike[str]) -> None:
    """Write a fitted ``model`` to ``path`` (a ``.safetensors`` file), atomically."""
    model._check_fitted()
    tensors: dict[str, Any] = {"freq_ns": np.array([model.freq_.value], dtype=np.int64)}
    extra: dict[str, Any] = {"cycle_start": str(model.cycle_start_)} if hasattr(model, "cycle_start_") else {}
    if model.n_covariates:
        extra["covariates"] = list(model.covariates_)
    if isinstance(model, NeuralForecaster):
        tensors["scaler.offset"] = torch.as_tensor(model.scaler_.offset_)
        tensors["scaler.scale"] = torch.as_tensor(model.scaler_.scale_)
        if model.net_ is not None:
            tensors.update({f"net.{k}": v for k, v in model.net_.state_dict().items()})
        if getattr(model, "quantile_offsets_", None) is not None:
            tensors["conformal.offsets"] = torch.as_tensor(model.quantile_offsets_)
        scaler = getattr(model, "covariate_scaler_", None)
        if scaler is not None:
            tensors["covariates.offset"] = torch.as_tensor(scaler.offset_)
            tensors["covariates.scale"] = torch.as_tensor(scaler.scale_)
        extra.update(
            {
                "history": [r.to_dict() for r in model.history_],
                "best_epoch": model.best_epoch_,
                "stopped_early": model.stopped_early_,
                "epoch_time_s": model.epoch_time_s_,
                "epoch_cpu_s": model.epoch_cpu_s_,
            }
        )
        if isinstance(model, ReCycle):
            extra["baseline_choice"] = model.baseline_.name  # what baseline="auto" chose
            extra["baseline_scores"] = dict(model.baseline_scores_)
    if isinstance(model, RidgeARX):
        tensors["ridge.coef"] = torch.as_tensor(model.coef_)
        tensors["ridge.intercept"] = torch.as_tensor(model.intercept_)
    if isinstance(model, GradientBoostedLags):  # LightGBM's own text format, one per column
        extra["lightgbm_models"] = [m.booster_.model_to_string() for m in model.models_]
    config = {
        "model": model.name,
        "params": model.get_params(deep=False),
        "columns": model.columns_,
        "series_name": model.series_name_,
    }
    seed = getattr(model, "seed", None)
    save_checkpoint(path, tensors, config=config, seed=seed, extra=extra)


#: Integer parameters that size a network: each must fit the weights the file holds.
_SIZE_PARAMS = (
    "cycle_length",
    "history_cycles",
    "horizon_cycles",
    "d_model",
    "nhead",
    "num_encoder_layers",
    "num_decoder_layers",
    "dim_feedforward",
)


def load_model(path: str | os.PathLike[str], *, device: str | None = None) -> Forecaster:
    """Load a model written by :func:`save_model` (onto ``device``, default: the saved one).

    Everything in the file is checked before it is used: the model name against
    :data:`MODELS`, the parameters against the constructor, the time step, the columns, the
    scaler and every weight's name, shape and dtype against the network those parameters
    build (built first on torch's meta device, so a file that claims a huge network allocates
    nothing). A file that fails any check raises :class:`~hai.shared.CheckpointError`.
    """
    ckpt = load_checkpoint(path, framework="torch")
    try:
        return _from_checkpoint(ckpt.tensors, ckpt.config, ckpt.extra, path, device)
    except CheckpointError:
        raise
    except HaiError as exc:  # a parameter the constructor's checks refuse
        raise CheckpointError(f"{path} is not a usable hai-forecast checkpoint: {exc}") from exc
    except (TypeError, ValueError, KeyError, AttributeError, IndexError, OverflowError, RuntimeError) as exc:
        raise CheckpointError(
            f"{path} is not a usable hai-forecast checkpoint: {type(exc).__name__}: {exc}"
        ) from exc


def _bad(path: Any, what: str) -> CheckpointError:
    return CheckpointError(f"{path} is not a usable hai-forecast checkpoint: {what}")


def _from_checkpoint(
    tensors: dict[str, Any], config: dict[str, Any], extra: dict[str, Any], path: Any, device: str | None
) -> Forecaster:
    name = config.get("model")
    if not isinstance(name, str) or name not in MODELS:
        raise CheckpointError(
            f"{path} holds an unknown model {name!r}, not a hai-forecast model",
            hint=f"known: {', '.join(MODELS)}",
        )
    raw_params = config.get("params")
    if not isinstance(raw_params, dict):
        raise _bad(path, "no parameter table ('params')")
    cls = MODELS[name]
    defaults = {
        k: v.default
        for k, v in inspect.signature(cls.__init__).parameters.items()
        if v.default is not v.empty
    }
    for klass in cls.__mro__:  # parameters of the bases (ReCycle passes **params on)
        if "__init__" in klass.__dict__:
            for k, v in inspect.signature(klass.__dict__["__init__"]).parameters.items():
                if v.default is not v.empty:
                    defaults.setdefault(k, v.default)
    params: dict[str, Any] = {
        k: tuple(v) if isinstance(v, list) and isinstance(defaults.get(k), tuple) else v
        for k, v in raw_params.items()
    }
    if device is not None and "device" in params:
        params["device"] = device
    try:
        model = cls(**params)
    except TypeError as exc:
        raise CheckpointError(f"{path} has parameters this hai-forecast does not accept: {exc}") from exc
    freq_t = tensors.get("freq_ns")
    if freq_t is None or freq_t.dtype != torch.int64 or tuple(freq_t.shape) != (1,) or int(freq_t[0]) <= 0:
        raise _bad(path, "no valid time step ('freq_ns': one positive int64)")
    freq = pd.Timedelta(int(freq_t[0]), unit="ns")
    columns = config.get("columns")
    if not isinstance(columns, list) or not columns or not all(isinstance(c, str) for c in columns):
        raise _bad(path, "no list of column names ('columns')")
    series_name = config.get("series_name")
    if series_name is not None and not isinstance(series_name, str | int | float):
        raise _bad(path, f"a series name of type {type(series_name).__name__}")
    if not isinstance(extra, dict):
        raise _bad(path, "malformed extra metadata")
    _restore(model, freq, columns, series_name)
    covariates = extra.get("covariates") or []
    if not isinstance(covariates, list) or not all(isinstance(c, str) for c in covariates):
        raise _bad(path, "a malformed list of covariates")
    if covariates and not model.supports_covariates:
        raise _bad(path, f"a {name} model takes no covariates, and the file names {', '.join(covariates)}")
    model.covariates_ = covariates
    if extra.get("cycle_start") is not None:
        model.cycle_start_ = pd.Timestamp(str(extra["cycle_start"]))
    if isinstance(model, NeuralForecaster):
        _restore_neural(model, tensors, extra, path, freq, columns, series_name)
    elif isinstance(model, RidgeARX):
        _restore_ridge(model, tensors, path)
    elif isinstance(model, GradientBoostedLags):
        _restore_lightgbm(model, extra, path)
    elif any(k != "freq_ns" for k in tensors):
        raise _bad(path, f"a {name} baseline has no weights, the file holds {', '.join(sorted(tensors))}")
    return model


def _restore_neural(
    model: NeuralForecaster,
    tensors: dict[str, Any],
    extra: dict[str, Any],
    path: Any,
    freq: pd.Timedelta,
    columns: list[str],
    series_name: Any,
) -> None:
    n = len(columns)
    scaler = Scaler(model.scaling)
    for part in ("offset", "scale"):
        t = tensors.get(f"scaler.{part}")
        if t is None or not t.dtype.is_floating_point or tuple(t.shape) != (n,):
            raise _bad(path, f"'scaler.{part}' must be {n} floating-point value(s), one per column")
        values = t.double().numpy()
        if not np.isfinite(values).all() or (part == "scale" and not (values > 0).all()):
            raise _bad(
                path,
                f"'scaler.{part}' holds values that are not finite"
                + (" and positive" if part == "scale" else ""),
            )
        setattr(scaler, f"{part}_", values)
    model.scaler_ = scaler
    model.covariate_scaler_ = _covariate_scaler(model, tensors, path)
    model.device_ = resolve_device(model.device)
    if isinstance(model, ReCycle):
        choice = extra.get("baseline_choice")
        if choice is not None and choice not in BASELINES:
            raise _bad(path, f"an unknown baseline {choice!r}")
        model.baseline_ = model._make_baseline(choice)
        scores = extra.get("baseline_scores") or {}
        if not isinstance(scores, dict):
            raise _bad(path, "malformed baseline scores")
        model.baseline_scores_ = {str(k): float(v) for k, v in scores.items()}
        _restore(model.baseline_, freq, columns, series_name)
    weights = {k[4:]: v for k, v in tensors.items() if k.startswith("net.")}
    unexpected = sorted(
        k
        for k in tensors
        if k
        not in (
            "freq_ns",
            "scaler.offset",
            "scaler.scale",
            "conformal.offsets",
            "covariates.offset",
            "covariates.scale",
        )
        and not k.startswith("net.")
    )
    model.quantile_offsets_ = None
    offsets = tensors.get("conformal.offsets")
    if offsets is not None:
        want = (n, model.n_quantiles)
        if (
            model.loss != "quantile"
            or offsets.dtype != torch.float64
            or tuple(offsets.shape) != want
            or not torch.isfinite(offsets).all()
        ):
            raise _bad(path, f"'conformal.offsets' must be {want} finite float64 values of a quantile model")
        model.quantile_offsets_ = offsets.numpy().copy()
    if unexpected:
        raise _bad(path, f"tensors this model does not have: {', '.join(unexpected[:5])}")
    model.net_ = None
    if model.uses_network:
        _check_sizes(model, weights, path)
        with torch.device("meta"):  # the shapes the parameters imply, without allocating them
            expected = model._build_net().state_dict()
        missing = sorted(set(expected) - set(weights))
        surplus = sorted(set(weights) - set(expected))
        if missing or surplus:
            detail = (f"missing {', '.join(missing[:5])}" if missing else "") + (
                f"{'; ' if missing else ''}unexpected {', '.join(surplus[:5])}" if surplus else ""
            )
            raise _bad(path, f"the weights do not match a {model.name} network: {detail}")
        for key, want in expected.items():
            got = weights[key]
            if tuple(got.shape) != tuple(want.shape) or got.dtype != want.dtype:
                raise _bad(
                    path,
                    f"weight {key!r} is {got.dtype} {tuple(got.shape)}; the model's parameters need "
                    f"{want.dtype} {tuple(want.shape)}",
                )
            if got.dtype.is_floating_point and not torch.isfinite(got).all():
                raise _bad(path, f"weight {key!r} holds NaN or infinite values")
        net = model._build_net()
        net.load_state_dict(weights)
        model.net_ = net.to(model.device_).eval()
    elif weights:
        raise _bad(path, "a model without a network, but the file holds network weights")
    history = extra.get("history") or []
    if not isinstance(history, list) or not all(isinstance(r, dict) for r in history):
        raise _bad(path, "a malformed training history")
    model.history_ = [EpochRecord(**r) for r in history]
    model.best_epoch_ = int(extra.get("best_epoch", 0))
    model.stopped_early_ = bool(extra.get("stopped_early", False))
    model.epoch_time_s_ = float(extra.get("epoch_time_s") or float("nan"))
    model.epoch_cpu_s_ = float(extra.get("epoch_cpu_s") or float("nan"))


def _covariate_scaler(model: NeuralForecaster, tensors: dict[str, Any], path: Any) -> Scaler | None:
    """The covariates' scaler (K offsets and scales), present exactly when the model has covariates."""
    held = [k for k in ("covariates.offset", "covariates.scale") if k in tensors]
    k = model.n_covariates
    if not k:
        if held:
            raise _bad(path, f"{', '.join(held)} without a list of covariates")
        return None
    scaler = Scaler("standard")
    for part in ("offset", "scale"):
        t = tensors.get(f"covariates.{part}")
        if t is None or not t.dtype.is_floating_point or tuple(t.shape) != (k,):
            raise _bad(path, f"'covariates.{part}' must be {k} floating-point value(s), one per covariate")
        values = t.double().numpy()
        if not np.isfinite(values).all() or (part == "scale" and not (values > 0).all()):
            raise _bad(path, f"'covariates.{part}' holds values that are not finite (or scales not positive)")
        setattr(scaler, f"{part}_", values)
    return scaler


def _check_sizes(model: NeuralForecaster, weights: dict[str, Any], path: Any) -> None:
    """Every size parameter is bounded by the weights in the file (before any network is built)."""
    total = sum(int(t.numel()) for t in weights.values())
    for key in _SIZE_PARAMS:
        value = getattr(model, key)
        limit = len(weights) if key.startswith("num_") else total
        if int(value) > max(limit, 1):
            raise _bad(path, f"{key}={value} is larger than the {total} weights in the file could hold")


def _restore_ridge(model: RidgeARX, tensors: dict[str, Any], path: Any) -> None:
    shape = (model.n_features_, int(model.cycle_length), len(model.feature_names))
    expected = {"freq_ns", "ridge.coef", "ridge.intercept"}
    if set(tensors) != expected:
        held = ", ".join(sorted(tensors))
        raise _bad(path, f"a ridge_arx model holds {', '.join(sorted(expected))}, not {held}")
    coef, intercept = tensors["ridge.coef"], tensors["ridge.intercept"]
    for name, t, want in (("coef", coef, shape), ("intercept", intercept, shape[:2])):
        if t.dtype != torch.float64 or tuple(t.shape) != want:
            raise _bad(path, f"ridge.{name} is {t.dtype} {tuple(t.shape)}, expected float64 {want}")
    model.coef_ = coef.numpy().copy()
    model.intercept_ = intercept.numpy().copy()


def _restore_lightgbm(model: GradientBoostedLags, extra: dict[str, Any], path: Any) -> None:
    from hai.forecast.regression import _lightgbm

    texts = extra.get("lightgbm_models")
    if (
        not isinstance(texts, list)
        or len(texts) != model.n_features_
        or not all(isinstance(t, str) for t in texts)
    ):
        raise _bad(path, f"no LightGBM model text per column ({model.n_features_} expected)")
    lgb = _lightgbm()
    try:
        model.models_ = [lgb.Booster(model_str=t) for t in texts]
    except lgb.basic.LightGBMError as exc:
        raise _bad(path, f"LightGBM cannot read a model: {exc}") from exc


def _restore(model: Forecaster, freq: pd.Timedelta, columns: list[str], series_name: Any) -> None:
    model._check_params()
    model.freq_ = freq
    model.columns_ = columns
    model.n_features_ = len(columns)
    model.series_name_ = series_name
