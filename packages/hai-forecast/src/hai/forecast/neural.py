"""What ReCycle and the token-per-step transformer share: windows, scaling, training, prediction.

Windows are cut at whole-cycle origins: the history is the ``history_cycles`` cycles before an
origin, the target the ``horizon_cycles`` cycles after it. The last ``validation_fraction`` of
the cycles passed to ``fit`` validate (early stopping); the scaler is fitted on the cycles
before them only. A network predicts, in scaled units, an output ``out`` that is added to a
base: ReCycle's base is its baseline (residual learning), the plain transformer's is zero. In
the series' own units the forecast is ``base + out × scale``, so ``out = 0`` gives the base
exactly. The training target is therefore built once, in scaled units, as ``(truth − base) /
scale``: a training step only runs the network and the loss (no per-step tensor building).

With ``loss="quantile"`` the quantile outputs are calibrated on the validation windows after
training (``calibration="conformal"``, the default): each symmetric pair of quantiles
``(τ, 1 − τ)`` is widened or narrowed by the conformalized-quantile-regression correction
(Romano, Patterson & Candès, NeurIPS 2019): the ``⌈(n + 1)(1 − α)⌉``-th smallest of the scores
``max(q_τ − y, y − q_{1−τ})`` over the ``n`` validation values, ``1 − α`` the nominal coverage;
an unpaired quantile is shifted by the ``τ``-quantile of its validation residuals; the median
(the point forecast) is left as it is. The corrections are per column, in series units
(``quantile_offsets_``), and saved with the model. The validation windows also chose the
early-stopping epoch, so they are not quite unseen: the coverage guarantee is approximate.
"""

from __future__ import annotations

import math
import os
from abc import abstractmethod
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd  # type: ignore[import-untyped]
import torch
import torch.nn.functional as F
from torch import nn

from hai.forecast.base import Forecaster, _check_positive_int, wall_phase
from hai.forecast.data import Scaler
from hai.forecast.losses import LOSSES, LossFn, check_quantiles, make_loss
from hai.forecast.training import Batch, EpochRecord, train_network
from hai.shared import InputError, RngStreams, resolve_device, torch_threads


def one_shot_transformer(
    d_model: int,
    nhead: int,
    num_encoder_layers: int,
    num_decoder_layers: int,
    dim_feedforward: int,
    dropout: float,
) -> nn.Transformer:
    """A batch-first ``torch.nn.Transformer`` (used without a causal mask: the horizon comes out at once).

    The encoder is built without the nested-tensor fast path, which only applies to padded
    batches (there is no padding here) and warns for an odd number of heads.
    """
    layer = nn.TransformerEncoderLayer(d_model, nhead, dim_feedforward, dropout, batch_first=True)
    encoder = nn.TransformerEncoder(
        layer, num_encoder_layers, norm=nn.LayerNorm(d_model), enable_nested_tensor=False
    )
    return nn.Transformer(
        d_model,
        nhead,
        num_encoder_layers,
        num_decoder_layers,
        dim_feedforward,
        dropout,
        custom_encoder=encoder,
        batch_first=True,
    )


#: Up to this many keys, single-head attention runs as two batched matrix products: for a few
#: tokens that is cheaper than the fused kernel (fewer operations); longer ones use the kernel.
SHORT_ATTENTION = 32


def _attention(
    m: nn.MultiheadAttention, x: torch.Tensor, memory: torch.Tensor | None, B: int, T: int, S: int
) -> torch.Tensor:
    """``m(x, kv, kv, need_weights=False)[0]`` on token rows.

    ``x`` is (B·T, E); ``kv`` is ``memory`` (B·S, E), or ``x`` itself when ``memory`` is None.
    """
    E, h = m.embed_dim, m.num_heads
    weight, bias = m.in_proj_weight, m.in_proj_bias
    dropout = m.dropout if m.training else 0.0
    if memory is None and T == 1 and not dropout:
        # One token attending to itself: its softmax weight is exactly 1, so the output is its value
        # (with attention dropout that weight would be dropped or scaled: the general path below).
        return F.linear(F.linear(x, weight[2 * E :], bias[2 * E :]), m.out_proj.weight, m.out_proj.bias)
    if memory is None:
        q, k, v = F.linear(x, weight, bias).view(B, T, 3 * E).split(E, dim=-1)
    else:
        q = F.linear(x, weight[:E], bias[:E]).view(B, T, E)
        k, v = F.linear(memory, weight[E:], bias[E:]).view(B, S, 2 * E).split(E, dim=-1)
    if h == 1 and S <= SHORT_ATTENTION:
        p = torch.softmax(torch.bmm(q, k.transpose(1, 2)) * (E**-0.5), dim=-1)
        out = torch.bmm(F.dropout(p, dropout) if dropout else p, v).view(B * T, E)
    else:
        d = E // h
        q = q.reshape(B, T, h, d).transpose(1, 2)
        k = k.reshape(B, S, h, d).transpose(1, 2)
        v = v.reshape(B, S, h, d).transpose(1, 2)
        out = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout).transpose(1, 2).reshape(B * T, E)
    return F.linear(out, m.out_proj.weight, m.out_proj.bias)


def _drop(m: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``m(x)`` for an ``nn.Dropout`` (no operation at all when it is off)."""
    assert isinstance(m, nn.Dropout)
    return F.dropout(x, m.p, True) if m.training and m.p > 0 else x


def _norm(m: nn.Module, x: torch.Tensor) -> torch.Tensor:
    assert isinstance(m, nn.LayerNorm)
    return F.layer_norm(x, m.normalized_shape, m.weight, m.bias, m.eps)


def _linear(m: nn.Module | torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    assert isinstance(m, nn.Linear)
    return F.linear(x, m.weight, m.bias)


def _feed_forward(layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
    hidden = F.relu(_linear(layer.linear1, x))
    dropout = layer.dropout
    assert isinstance(dropout, nn.Dropout)
    return _linear(layer.linear2, _drop(dropout, hidden))


def transformer_forward(t: nn.Transformer, src: torch.Tensor, tgt: torch.Tensor) -> torch.Tensor:
    """``t(src, tgt)`` for a :func:`one_shot_transformer`, with fewer tensor operations per call.

    The same post-norm ReLU layers, parameters and dropout positions as ``torch.nn.Transformer``
    without masks (its outputs agree to float rounding; ``state_dict`` is unchanged). What it
    leaves out, for ReCycle's few tokens, where a training step is bound by the number of tensor
    operations rather than by arithmetic: the argument checks and fast-path probing that
    ``nn.Transformer`` runs on every call, the reshapes of 3-D linear layers (tokens stay one
    (B·T, E) matrix), and the fused attention kernel where two matrix products do (one head and
    at most :data:`SHORT_ATTENTION` keys); a single target token's self-attention is its value
    (without attention dropout).

    >>> t = one_shot_transformer(8, 2, 1, 1, 16, 0.0).eval()
    >>> src, tgt = torch.randn(3, 5, 8), torch.randn(3, 2, 8)
    >>> torch.allclose(transformer_forward(t, src, tgt), t(src, tgt), atol=1e-5)
    True
    """
    B, S, E = src.shape
    T = tgt.shape[1]
    x = src.reshape(B * S, E)
    for layer in t.encoder.layers:
        x = _norm(layer.norm1, x + _drop(layer.dropout1, _attention(layer.self_attn, x, None, B, S, S)))
        x = _norm(layer.norm2, x + _drop(layer.dropout2, _feed_forward(layer, x)))
    memory = _norm(t.encoder.norm, x) if t.encoder.norm is not None else x
    y = tgt.reshape(B * T, E)
    for layer in t.decoder.layers:
        y = _norm(layer.norm1, y + _drop(layer.dropout1, _attention(layer.self_attn, y, None, B, T, T)))
        cross = _attention(layer.multihead_attn, y, memory, B, T, S)
        y = _norm(layer.norm2, y + _drop(layer.dropout2, cross))
        y = _norm(layer.norm3, y + _drop(layer.dropout3, _feed_forward(layer, y)))
    y = _norm(t.decoder.norm, y) if t.decoder.norm is not None else y
    return y.view(B, T, E)


#: How the quantile outputs are calibrated after training (``loss="quantile"``).
CALIBRATIONS: tuple[str, ...] = ("conformal", "none")


class NeuralForecaster(Forecaster):
    """Base of the trained forecasters (see :class:`hai.forecast.ReCycle`)."""

    def __init__(
        self,
        cycle_length: int = 24,
        history_cycles: int = 7,
        horizon_cycles: int = 1,
        *,
        d_model: int = 32,
        nhead: int = 1,
        num_encoder_layers: int = 1,
        num_decoder_layers: int = 1,
        dim_feedforward: int = 96,
        dropout: float = 0.0,
        loss: str = "l1",
        quantiles: Sequence[float] = (0.1, 0.5, 0.9),
        calibration: str = "conformal",
        epochs: int = 200,
        batch_size: int = 32,
        lr: float = 1e-3,
        weight_decay: float = 0.01,
        patience: int | None = 20,
        validation_fraction: float = 0.2,
        scaling: str = "standard",
        seed: int = 0,
        device: str = "cpu",
        threads: int | None = 1,
        period: str | None = "1D",
        country: str | None = None,
        subdiv: str | None = None,
        fill: str = "raise",
    ) -> None:
        super().__init__(
            cycle_length, horizon_cycles, period=period, country=country, subdiv=subdiv, fill=fill
        )
        self.history_cycles = history_cycles
        self.d_model = d_model
        self.nhead = nhead
        self.num_encoder_layers = num_encoder_layers
        self.num_decoder_layers = num_decoder_layers
        self.dim_feedforward = dim_feedforward
        self.dropout = dropout
        self.loss = loss
        self.quantiles = quantiles
        self.calibration = calibration
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.patience = patience
        self.validation_fraction = validation_fraction
        self.scaling = scaling
        self.seed = seed
        self.device = device
        self.threads = threads

    # -- what subclasses provide ----------------------------------------------------------
    @property
    def context_cycles(self) -> int:
        """Cycles needed before the history window (ReCycle's baseline looks back)."""
        return 0

    @property
    def min_history_cycles(self) -> int:
        return int(self.history_cycles) + self.context_cycles

    @abstractmethod
    def _build_net(self) -> nn.Module: ...

    @abstractmethod
    def _inputs(self, frame: pd.DataFrame, origins: np.ndarray) -> tuple[Batch, np.ndarray]:
        """Network inputs (scaled tensors) and the base in series units ``(N, horizon, C)``."""
        ...

    @property
    def uses_network(self) -> bool:
        return True

    # -- fitting --------------------------------------------------------------------------
    @property
    def n_quantiles(self) -> int:
        return len(self._quantiles)

    @property
    def _quantiles(self) -> tuple[float, ...]:
        """The quantiles the network outputs, sorted (just the point forecast unless loss='quantile')."""
        return check_quantiles(self.quantiles) if self.loss == "quantile" else (0.5,)

    def _check_params(self) -> None:
        super()._check_params()
        _check_positive_int("history_cycles", self.history_cycles)
        for name in ("d_model", "nhead", "num_encoder_layers", "num_decoder_layers", "dim_feedforward"):
            _check_positive_int(name, getattr(self, name))
        _check_positive_int("batch_size", self.batch_size)
        _check_positive_int("seed", self.seed, 0)
        _check_positive_int("epochs", self.epochs, 0)
        if self.patience is not None:
            _check_positive_int("patience", self.patience)
        if self.d_model % self.nhead:
            raise InputError(f"d_model={self.d_model} must be a multiple of nhead={self.nhead}")
        if not 0.0 <= self.dropout < 1.0:
            raise InputError(f"dropout must be in [0, 1), got {self.dropout}")
        if not 0.0 <= self.validation_fraction < 1.0:
            raise InputError(f"validation_fraction must be in [0, 1), got {self.validation_fraction}")
        if not self.lr > 0:
            raise InputError(f"lr must be positive, got {self.lr}")
        if not self.weight_decay >= 0:
            raise InputError(f"weight_decay must be at least 0, got {self.weight_decay}")
        if self.loss not in LOSSES:
            raise InputError(f"unknown loss {self.loss!r}", hint=f"use one of {', '.join(LOSSES)}")
        if self.loss == "quantile":
            check_quantiles(self.quantiles)
        if self.calibration not in CALIBRATIONS:
            raise InputError(
                f"unknown calibration {self.calibration!r}", hint=f"use one of {', '.join(CALIBRATIONS)}"
            )
        if self.loss == "quantile" and self.calibration == "conformal" and self.validation_fraction == 0:
            raise InputError(
                "conformal calibration of the quantiles needs validation cycles, and "
                "validation_fraction is 0",
                hint="set validation_fraction > 0 (e.g. 0.2), or calibration='none'",
            )
        if self.threads is not None:
            _check_positive_int("threads", self.threads)
        if self.scaling not in ("standard", "minmax"):
            raise InputError(f"unknown scaling {self.scaling!r}", hint="use 'standard' or 'minmax'")

    def _window_origins(self, n_steps: int) -> tuple[np.ndarray, np.ndarray, int]:
        """Train and validation origins (positions) and the first validation step."""
        L, F = int(self.cycle_length), int(self.horizon_cycles)
        n_cycles = n_steps // L
        first = self.min_history_cycles
        if n_cycles < first + F:
            raise InputError(
                f"the series has {n_cycles} whole cycles of {L} steps; training needs at least "
                f"{first + F} (history {self.history_cycles} + baseline context {self.context_cycles} "
                f"+ horizon {F})",
                hint="give a longer series, or lower history_cycles/horizon_cycles",
            )
        n_val = round(n_cycles * self.validation_fraction)
        val_start = n_cycles - n_val
        cycle_origins = np.arange(first, n_cycles - F + 1)
        train = cycle_origins[cycle_origins + F <= val_start]
        val = cycle_origins[cycle_origins >= val_start]
        if len(train) == 0:
            raise InputError(
                f"no training window left: {n_cycles} cycles with {n_val} for validation, and each window "
                f"needs {first + F}",
                hint="give a longer series or a smaller validation_fraction",
            )
        return train * L, val * L, val_start * L

    def _fit(self, frame: pd.DataFrame) -> None:
        L = int(self.cycle_length)
        frame = frame.iloc[len(frame) % L :]
        train_o, val_o, val_start = self._window_origins(len(frame))
        self.scaler_ = Scaler(self.scaling).fit(frame.to_numpy()[:val_start])
        self.covariate_scaler_: Scaler | None = None
        if self.n_covariates:  # standardised on the training part, as the series
            self.covariate_scaler_ = Scaler("standard").fit(self._covariates_at(frame, np.arange(val_start)))
        self.device_ = resolve_device(self.device)
        self.history_: list[EpochRecord] = []
        self.best_epoch_ = 0
        self.stopped_early_ = False
        self.epoch_time_s_ = float("nan")
        self.epoch_cpu_s_ = float("nan")
        self.n_train_windows_, self.n_val_windows_ = len(train_o), len(val_o)
        self.quantile_offsets_: np.ndarray | None = None
        self._train(frame, train_o, val_o)
        self.quantile_offsets_ = self._conformal_offsets(frame, val_o)

    def _train(self, frame: pd.DataFrame, train_o: np.ndarray, val_o: np.ndarray) -> None:
        streams = RngStreams(self.seed)
        with torch.random.fork_rng(devices=[]), torch_threads(self.threads):
            torch.manual_seed(streams.entropy("init") & 0x7FFF_FFFF)
            self.net_: nn.Module | None = self._build_net().to(self.device_) if self.uses_network else None
            if self.net_ is None or self.epochs == 0:
                return
            self._loss_fn = make_loss(self.loss, self._quantiles)
            train = self._training_batch(frame, train_o)
            val = self._training_batch(frame, val_o) if len(val_o) else None
            result = train_network(
                self.net_,
                self._loss_of,
                train,
                val,
                epochs=int(self.epochs),
                batch_size=int(self.batch_size),
                lr=float(self.lr),
                weight_decay=float(self.weight_decay),
                patience=self.patience,
                generator=streams.torch("shuffle"),
            )
        self.history_ = result.history
        self.best_epoch_ = result.best_epoch
        self.stopped_early_ = result.stopped_early
        self.epoch_time_s_ = result.median_epoch_s
        self.epoch_cpu_s_ = result.median_epoch_cpu_s

    def _conformal_offsets(self, frame: pd.DataFrame, val_o: np.ndarray) -> np.ndarray | None:
        """Per column and quantile, the conformal correction in series units (see the module)."""
        if self.loss != "quantile" or self.calibration == "none":
            return None
        if len(val_o) == 0:
            raise InputError(
                "conformal calibration of the quantiles needs validation windows, and none is left",
                hint="give a longer series or a larger validation_fraction, or calibration='none'",
            )
        raw = self._raw_quantiles(frame, val_o, calibrated=False)
        values = frame.to_numpy()
        truth = np.stack([values[o : o + self.horizon] for o in val_o.tolist()])
        qs = self._quantiles
        offsets = np.zeros((raw.shape[2], len(qs)))
        for c in range(raw.shape[2]):
            y = truth[:, :, c].ravel()
            for i, tau in enumerate(qs):
                if tau == 0.5:
                    continue
                partner = [j for j, other in enumerate(qs) if abs(other - (1.0 - tau)) < 1e-9]
                if partner:
                    lo, hi = (i, partner[0]) if tau < 0.5 else (partner[0], i)
                    score = np.maximum(raw[:, :, c, lo].ravel() - y, y - raw[:, :, c, hi].ravel())
                    n = len(score)
                    k = min(n, math.ceil((n + 1) * (qs[hi] - qs[lo])))
                    correction = float(np.sort(score)[k - 1])
                    offsets[c, i] = -correction if tau < 0.5 else correction
                else:
                    offsets[c, i] = float(np.quantile(y - raw[:, :, c, i].ravel(), tau))
        return offsets

    @property
    def n_parameters_(self) -> int:
        """Trainable parameters of the network (0 without one)."""
        self._check_fitted()
        return 0 if self.net_ is None else sum(p.numel() for p in self.net_.parameters() if p.requires_grad)

    def _training_batch(self, frame: pd.DataFrame, origins: np.ndarray) -> Batch:
        """Network inputs and the target of the network output, ``(truth − base) / scale``."""
        inputs, base = self._inputs(frame, origins)
        values = frame.to_numpy()
        target = np.stack([values[o : o + self.horizon] for o in origins.tolist()])
        inputs["target"] = self._tensor((target - base) / self.scaler_.scale_)
        return inputs

    def _tensor(self, array: np.ndarray, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        return torch.as_tensor(np.ascontiguousarray(array), dtype=dtype, device=self.device_)

    def _loss_of(self, net: nn.Module, batch: Batch) -> torch.Tensor:
        """The loss of the network output against ``(truth − base) / scale``.

        Equal to the loss of the scaled forecast ``base / scale + out`` against the scaled truth
        (L1, MSE and pinball losses depend on the difference only).
        """
        loss_fn: LossFn = getattr(self, "_loss_fn", None) or make_loss(self.loss, self._quantiles)
        return loss_fn(self._forward(net, batch), batch["target"])

    @abstractmethod
    def _forward(self, net: nn.Module, batch: Batch) -> torch.Tensor:
        """The network output ``(N, horizon, C, Q)`` in scaled units."""
        ...

    # -- prediction -----------------------------------------------------------------------
    def _check_origins(self, frame: pd.DataFrame, origins: np.ndarray) -> None:
        """The networks forecast from cycle starts only: the time of the cycle they were trained on.

        A token is one whole cycle (ReCycle) or a step numbered within its cycle (the
        transformer), so a history that ends elsewhere in the cycle would shift every token.
        """
        start = getattr(self, "cycle_start_", None)
        if start is None or len(origins) == 0:
            return
        L = int(self.cycle_length)
        trained = wall_phase(start, self.freq_, L)
        phases = (wall_phase(frame.index[0], self.freq_, L) + origins) % L
        bad = np.flatnonzero(phases != trained)
        if len(bad) == 0:
            return
        first = int(origins[bad[0]])
        at = frame.index[0] + first * self.freq_
        shift = int((phases[bad[0]] - trained) % L)
        cycle_time = pd.Timestamp(start).strftime("%H:%M")
        raise InputError(
            f"{self.name} forecasts from the start of a cycle only: it was trained on cycles of {L} steps "
            f"that start at {cycle_time} (as {pd.Timestamp(start)}), and the forecast would start at {at}, "
            f"{shift} step(s) into a cycle",
            hint=f"end the history at a cycle start: drop its last {shift} step(s) or add {L - shift}",
        )

    def _raw_quantiles(
        self, frame: pd.DataFrame, origins: np.ndarray, *, calibrated: bool = True
    ) -> np.ndarray:
        """Forecasts ``(N, horizon, C, Q)`` in series units (with the conformal corrections)."""
        inputs, base = self._inputs(frame, origins)
        Q = self.n_quantiles
        if self.net_ is None:
            raw = np.repeat(base[..., None], Q, axis=-1)
        else:
            self.net_.eval()
            outs = []
            with torch.no_grad(), torch_threads(self.threads):
                n = len(origins)
                for start in range(0, n, 256):
                    part = {k: v[start : start + 256] for k, v in inputs.items()}
                    outs.append(self._forward(self.net_, part).double().cpu().numpy())
            out = np.concatenate(outs)
            raw = base[..., None] + out * self.scaler_.scale_[None, None, :, None]
        offsets = getattr(self, "quantile_offsets_", None)
        if calibrated and offsets is not None:
            raw = raw + offsets[None, None, :, :]
        return np.sort(raw, axis=-1) if Q > 1 else raw

    def predict_quantiles_at(self, y: Any, origins: Any, covariates: Any = None) -> np.ndarray:
        """Quantile forecasts ``(len(origins), horizon, n_columns, n_quantiles)`` from each origin.

        The quantiles are ``sorted(quantiles)``, calibrated (``calibration="conformal"``); the
        forecast from origin ``o`` uses ``y[:o]`` only, as for :meth:`predict_at`.
        """
        if self.loss != "quantile":
            raise InputError("prediction intervals need a model trained with loss='quantile'")
        frame = self._prepare(y)
        positions = np.asarray(origins, dtype=np.int64).reshape(-1)
        cov = self._covariate_frame(covariates, fitting=False)
        with self._using_covariates(cov):
            self._predict_checked(frame, positions)  # the checks (history, origins, covariates, finite)
            return self._raw_quantiles(frame, positions)

    def _predict_origins(self, frame: pd.DataFrame, origins: np.ndarray) -> np.ndarray:
        raw = self._raw_quantiles(frame, origins)
        if self.n_quantiles == 1:
            return raw[..., 0]
        return raw[..., self._quantiles.index(0.5)]

    def predict_quantiles(self, history: Any, covariates: Any = None) -> pd.DataFrame:
        """Quantile forecasts (``loss="quantile"``): one column per quantile (``q0.1`` …).

        Several target columns give column names ``"<column>|q0.1"``.
        """
        if self.loss != "quantile":
            raise InputError("prediction intervals need a model trained with loss='quantile'")
        frame = self._prepare(history)
        need = self.min_history_cycles * self.cycle_length
        if len(frame) < need:
            raise InputError(f"a forecast needs at least {need} steps of history, got {len(frame)}")
        origin = np.array([len(frame)])
        self._check_origins(frame, origin)
        cov = self._covariate_frame(covariates, fitting=False)
        with self._using_covariates(cov):
            if self.n_covariates:
                self._covariates_at(frame, len(frame) + np.arange(self.horizon))
            raw = self._raw_quantiles(frame, origin)[0]
        if not np.isfinite(raw).all():
            raise InputError(
                f"the {self.name} quantile forecast is not finite (NaN or infinity)",
                hint="rescale the series (e.g. kW to MW), or retrain the model",
            )
        index = pd.date_range(frame.index[-1] + self.freq_, periods=self.horizon, freq=self.freq_)
        columns: dict[str, np.ndarray] = {}
        for c, name in enumerate(self.columns_):
            for q, quantile in enumerate(self._quantiles):
                label = f"q{quantile:g}" if self.n_features_ == 1 else f"{name}|q{quantile:g}"
                columns[label] = raw[:, c, q]
        return pd.DataFrame(columns, index=index)

    # -- checkpoints ----------------------------------------------------------------------
    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the fitted model to a safetensors checkpoint (weights, scaler, parameters)."""
        from hai.forecast.checkpoints import save_model

        save_model(self, path)
