"""ReCycle: the Residual Cyclic Transformer (Weyrauch et al., IEEE CAI 2024, arXiv 2405.03429).

Three ideas, as in the reference implementation (Helmholtz-AI-Energy/ReCycle):

1. **Primary cycle compression**: one token is one whole cycle (one day of hourly values is a
   token of width 24 × columns), so attention runs over ``history_cycles`` tokens, not
   ``history_cycles × cycle_length``.
2. **Residual learning** over a recent-historic-profile baseline: the encoder sees each history
   cycle minus its own baseline profile (``residual_input``); the decoder sees the baseline of
   the forecast cycles (``meta_token``) and the output is added to it (``residual_forecast``).
3. A **one-shot encoder–decoder transformer** (``torch.nn.Transformer``, no causal mask) with
   weekday and day-type embeddings: the whole horizon comes out at once.

The output layer starts at zero, so an untrained ReCycle forecasts its baseline; with
``use_network=False`` it *is* the baseline, exactly (the explainable fallback).

>>> from hai.forecast.data import synthetic_cyclic
>>> y = synthetic_cyclic(n_cycles=40, seed=0)
>>> model = ReCycle(epochs=2).fit(y)
>>> model.predict(y).shape
(24,)
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np
import pandas as pd  # type: ignore[import-untyped]
import torch
from torch import nn

from hai.forecast.baselines import BASELINES, Baseline, make_baseline
from hai.forecast.neural import NeuralForecaster, one_shot_transformer, transformer_forward
from hai.forecast.training import Batch
from hai.shared import InputError

#: The baselines ``baseline="auto"`` chooses from: the recent-historic-profile family.
AUTO_BASELINES: tuple[str, ...] = ("last_profile", "same_type_mean", "ten_day_mean")


class ReCycleNet(nn.Module):
    """The one-shot encoder–decoder over cycle tokens.

    ``forward(history, history_calendar, future, future_calendar)`` takes history residual
    tokens ``(B, H, L·(C + 2K))``, future baseline tokens ``(B, F, L·(C + 2K))`` and calendars
    ``(…, 2)`` (weekday, day type); it returns the residual ``(B, F·L, C, Q)``. ``K``
    (``n_covariates``) future-known covariates add two channels each to every step of a token:
    their residual over the same baseline and their standardised value (none by default).
    """

    def __init__(
        self,
        cycle_length: int,
        n_features: int,
        history_cycles: int,
        horizon_cycles: int,
        *,
        d_model: int = 32,
        nhead: int = 1,
        num_encoder_layers: int = 1,
        num_decoder_layers: int = 1,
        dim_feedforward: int = 96,
        dropout: float = 0.0,
        n_quantiles: int = 1,
        n_covariates: int = 0,
    ) -> None:
        super().__init__()
        token = cycle_length * n_features
        token_in = cycle_length * (n_features + 2 * n_covariates)
        self.cycle_length, self.n_features, self.n_quantiles = cycle_length, n_features, n_quantiles
        self.history_cycles = history_cycles
        self.encoder_in = nn.Linear(token_in, d_model)
        self.decoder_in = nn.Linear(token_in, d_model)
        self.weekday = nn.Embedding(7, d_model)
        self.day_type = nn.Embedding(3, d_model)
        self.position = nn.Parameter(torch.randn(history_cycles + horizon_cycles, d_model) * 0.02)
        self.transformer = one_shot_transformer(
            d_model, nhead, num_encoder_layers, num_decoder_layers, dim_feedforward, dropout
        )
        self.head = nn.Linear(d_model, token * n_quantiles)
        nn.init.zeros_(self.head.weight)  # start at the baseline: zero residual
        nn.init.zeros_(self.head.bias)

    def _calendar(self, calendar: torch.Tensor) -> torch.Tensor:
        return self.weekday(calendar[..., 0]) + self.day_type(calendar[..., 1])

    def forward(
        self,
        history: torch.Tensor,
        history_calendar: torch.Tensor,
        future: torch.Tensor,
        future_calendar: torch.Tensor,
    ) -> torch.Tensor:
        H, F = history.shape[1], future.shape[1]
        # Calendar and position of all H + F tokens at once (fewer small ops per training step).
        embedded = self._calendar(torch.cat([history_calendar, future_calendar], 1)) + self.position[: H + F]
        src = self.encoder_in(history) + embedded[:, :H]
        tgt = self.decoder_in(future) + embedded[:, H:]
        hidden = transformer_forward(self.transformer, src, tgt)
        out = self.head(hidden)  # (B, F, L*C*Q)
        B, F = out.shape[:2]
        return out.reshape(B, F * self.cycle_length, self.n_features, self.n_quantiles)


class ReCycle(NeuralForecaster):
    """Residual Cyclic Transformer forecaster (scikit-learn style).

    Parameters: ``cycle_length`` steps per cycle (24 for hourly data with daily cycles; must
    match the sampling and ``period``, default one day), ``history_cycles`` cycles of input,
    ``horizon_cycles`` cycles forecast at once, ``baseline`` ``"auto"`` (the default, the best
    configuration in ``benchmarks/bench_accuracy.py``: 8–16 % lower MASE than ``last_profile``
    on the SimBench series, equal on Victoria): a ReCycle is fitted over each of
    :data:`AUTO_BASELINES` (last profile, same-type mean, ten-day mean) and the one with the
    lowest MAE on the validation windows is kept, i.e. on the whole-cycle origins in the last
    ``validation_fraction`` of the training series (the test part is never looked at; the
    MAEs are kept in ``baseline_scores_``, the choice in ``baseline_``; fitting takes three
    times as long; with no validation window, ``validation_fraction=0`` or a series too short,
    it takes ``last_profile`` and ``baseline_scores_`` stays empty), or one of
    :data:`hai.forecast.BASELINES` by name (``baseline_params`` such as ``{"k": 3}`` for
    ``same_type_mean``), ``use_network`` (False: the baseline alone), and the
    network/training parameters of :class:`~hai.forecast.neural.NeuralForecaster`: ``d_model``
    32, ``nhead`` 1, one encoder and one decoder layer, ``dim_feedforward`` 96 (the reference
    implementation's defaults are one head and 96), ``dropout`` 0 (the reference
    implementation's default), ``loss`` ``"l1"``/``"mse"``/``"quantile"`` (with
    ``quantiles``), ``epochs`` 200, ``batch_size`` 32, ``lr`` 1e-3 (Adam), ``weight_decay`` 0.01 (an L2 pull
    of the residual network towards zero, i.e. towards the baseline; it lowered the validation
    loss on Victoria and SimBench G1-A), ``patience`` 20 (early
    stopping on the last ``validation_fraction`` 0.2 of the cycles), ``scaling``, ``seed``, ``device``,
    ``threads`` (torch CPU threads while fitting and predicting, default 1: the fastest for
    networks this small, and unaffected by other busy processes; None keeps torch's setting),
    ``country``/``subdiv`` for holidays (None, the default: no holiday calendar, weekdays only;
    give the country, e.g. ``country="DE"``, whenever it is known: holidays become their own day
    type for the baselines and the network; ``hai.forecast.datasets`` name theirs and the CLI
    passes them on), ``fill`` for gaps. Future-known covariates (temperature …) go to
    ``fit(y, covariates=...)`` and ``predict(history, covariates=...)``: each adds two channels
    to every step of every token (:class:`ReCycleNet`), its residual over the model's baseline
    and its standardised value, the decoder's at the forecast steps themselves.

    After ``fit``: ``net_`` (the :class:`ReCycleNet`), ``scaler_``, ``baseline_``,
    ``history_`` (per-epoch losses and times), ``best_epoch_``, ``epoch_time_s_`` and
    ``epoch_cpu_s_`` (median wall and CPU seconds of a training pass),
    ``fit_cost_`` (wall/CPU time and energy), ``n_parameters_``.

    >>> from hai.forecast.data import synthetic_cyclic
    >>> y = synthetic_cyclic(n_cycles=30)
    >>> fallback = ReCycle(use_network=False).fit(y)
    >>> bool((fallback.predict(y) == fallback.baseline_.predict(y)).all())
    True
    >>> auto = ReCycle(baseline="auto", use_network=False).fit(synthetic_cyclic(n_cycles=60))
    >>> auto.baseline_.name in AUTO_BASELINES, sorted(auto.baseline_scores_) == sorted(AUTO_BASELINES)
    (True, True)
    """

    name = "recycle"
    supports_covariates = True

    def __init__(
        self,
        cycle_length: int = 24,
        history_cycles: int = 7,
        horizon_cycles: int = 1,
        *,
        baseline: str = "auto",
        baseline_params: dict[str, Any] | None = None,
        use_network: bool = True,
        **params: Any,
    ) -> None:
        super().__init__(cycle_length, history_cycles, horizon_cycles, **params)
        self.baseline = baseline
        self.baseline_params = baseline_params
        self.use_network = use_network

    def _make_baseline(self, name: str | None = None) -> Baseline:
        """The baseline ``name`` (default: the ``baseline`` parameter) with this model's calendar.

        ``baseline_params`` go to the baselines that take them (``k``: same_type_mean, ``days``:
        ten_day_mean), so one dict serves every candidate of ``baseline="auto"``.
        """
        name = self.baseline if name is None else name
        if name not in BASELINES:
            choices = ", ".join((*BASELINES, "auto"))
            raise InputError(f"unknown baseline {name!r}", hint=f"use one of {choices}")
        return make_baseline(
            name,
            cycle_length=self.cycle_length,
            horizon_cycles=self.horizon_cycles,
            period=self.period,
            country=self.country,
            subdiv=self.subdiv,
            fill=self.fill,
            **self._baseline_params_for(name),
        )

    def _baseline_params_for(self, name: str) -> dict[str, Any]:
        params = dict(self.baseline_params or {})
        if self.baseline == "auto":
            accepted = inspect.signature(BASELINES[name].__init__).parameters
            params = {k: v for k, v in params.items() if k in accepted}
        return params

    @property
    def _candidates(self) -> tuple[str, ...]:
        return AUTO_BASELINES if self.baseline == "auto" else (self.baseline,)

    @property
    def context_cycles(self) -> int:
        if hasattr(self, "baseline_"):
            return self.baseline_.context_cycles
        return max(self._make_baseline(name).context_cycles for name in self._candidates)

    @property
    def uses_network(self) -> bool:
        return bool(self.use_network)

    def _auto_candidates(self, frame: pd.DataFrame) -> tuple[str, ...]:
        """The candidates of ``auto`` that have a training window before the validation part.

        A short series leaves out the baselines with a long context (same-type mean: three weeks).
        """
        n_cycles = len(frame) // int(self.cycle_length)
        val_start = n_cycles - round(n_cycles * self.validation_fraction)
        need = int(self.history_cycles) + int(self.horizon_cycles)
        return tuple(
            name for name in AUTO_BASELINES if need + self._make_baseline(name).context_cycles <= val_start
        )

    def _validation_origins(self, frame: pd.DataFrame, candidates: tuple[str, ...]) -> np.ndarray:
        """Whole-cycle origins in the validation part where every candidate has its history and context.

        Empty when there are none (``validation_fraction=0``, or a series too short).
        """
        L, F = int(self.cycle_length), int(self.horizon_cycles)
        n_cycles = len(frame) // L
        val_start = n_cycles - round(n_cycles * self.validation_fraction)
        context = max((self._make_baseline(name).context_cycles for name in candidates), default=0)
        first = max(val_start, int(self.history_cycles) + context)
        return np.arange(first, n_cycles - F + 1) * L

    def _fit_auto(self, frame: pd.DataFrame) -> None:
        """``baseline="auto"``: fit one ReCycle per candidate, keep the lowest validation MAE.

        The score of a candidate is the MAE of its fitted ReCycle (network and baseline; the
        baseline alone without a network or with ``epochs=0``) over :meth:`_validation_origins`
        (ties: the first in :data:`AUTO_BASELINES`). Only the training series is used. The
        candidates are those with a training window (:meth:`_auto_candidates`); without
        validation windows, or with none of them, nothing can be compared: the first candidate,
        ``last_profile`` (the reference implementation's base), is fitted and
        ``baseline_scores_`` stays empty.
        """
        names = self._auto_candidates(frame)
        origins = self._validation_origins(frame, names)
        if len(origins) == 0 or not names:
            names, origins = AUTO_BASELINES[:1], origins[:0]
        values = frame.to_numpy()
        scores: dict[str, float] = {}
        fitted: dict[str, ReCycle] = {}
        for name in names:
            params = {"baseline": name, "baseline_params": self._baseline_params_for(name) or None}
            candidate = type(self)(**{**self.get_params(), **params})
            cov = self._active_covariates
            candidate.fit(frame, covariates=cov)
            if len(origins):
                truth = np.stack([values[o : o + self.horizon] for o in origins.tolist()])
                forecast = candidate.predict_at(frame, origins, covariates=cov)
                scores[name] = float(np.mean(np.abs(forecast - truth)))
            fitted[name] = candidate
        best = fitted[min(names, key=lambda name: scores.get(name, 0.0))]
        keep = {"fit_cost_", "series_name_", "freq_", "columns_", "n_features_"}
        for key, value in vars(best).items():
            if (key.endswith("_") or key == "_loss_fn") and key not in keep:
                setattr(self, key, value)
        self.baseline_.series_name_ = self.series_name_
        self.baseline_scores_: dict[str, float] = scores

    def _fit(self, frame: pd.DataFrame) -> None:
        frame = frame.iloc[len(frame) % int(self.cycle_length) :]
        if hasattr(self, "baseline_"):
            del self.baseline_  # a refit chooses afresh
        self.baseline_scores_ = {}
        if self.baseline == "auto":
            self._fit_auto(frame)
            return
        baseline = self._make_baseline()
        baseline.fit(frame)
        self.baseline_: Baseline = baseline
        self.baseline_.series_name_ = self.series_name_  # answer in the same pandas shape as the model
        super()._fit(frame)

    def _build_net(self) -> nn.Module:
        return ReCycleNet(
            int(self.cycle_length),
            self.n_features_,
            int(self.history_cycles),
            int(self.horizon_cycles),
            d_model=int(self.d_model),
            nhead=int(self.nhead),
            num_encoder_layers=int(self.num_encoder_layers),
            num_decoder_layers=int(self.num_decoder_layers),
            dim_feedforward=int(self.dim_feedforward),
            dropout=float(self.dropout),
            n_quantiles=self.n_quantiles,
            n_covariates=self.n_covariates,
        )

    def _inputs(self, frame: pd.DataFrame, origins: np.ndarray) -> tuple[Batch, np.ndarray]:
        L, H, F = int(self.cycle_length), int(self.history_cycles), int(self.horizon_cycles)
        C = frame.shape[1]
        base = self.baseline_.profiles_from(frame, origins, F)  # (N, F*L, C)
        if not self.uses_network:
            return {}, base
        values = frame.to_numpy()
        hist_starts = origins[:, None] - L * np.arange(H, 0, -1)[None, :]  # (N, H)
        unique = np.unique(hist_starts)
        profiles = self.baseline_.profiles_from(frame, unique, 1)  # (U, L, C)
        hist_rhp = profiles[np.searchsorted(unique, hist_starts)]  # (N, H, L, C)
        hist = np.stack([values[o - H * L : o] for o in origins.tolist()]).reshape(len(origins), H, L, C)
        scale = self.scaler_.scale_
        N = len(origins)
        residual = (hist - hist_rhp) / scale  # (N, H, L, C)
        # The decoder sees the baseline's shape relative to the window's own mean level (instance
        # normalisation): levels outside the training range (a colder winter) stay in range.
        level = hist.mean(axis=(1, 2))[:, None, :]  # (N, 1, C)
        future = ((base - level) / scale).reshape(N, F, L, C)
        if self.n_covariates:
            cov_hist, cov_future = self._covariate_channels(frame, origins, hist_starts, unique)
            residual = np.concatenate([residual, cov_hist], axis=-1)
            future = np.concatenate([future, cov_future], axis=-1)
        residual = residual.reshape(N, H, -1)
        future = future.reshape(N, F, -1)
        fut_starts = origins[:, None] + L * np.arange(F)[None, :]
        hw, ht = self._calendar(frame, hist_starts)
        fw, ft = self._calendar(frame, fut_starts)
        inputs = {
            "history": self._tensor(residual),
            "history_calendar": self._tensor(np.stack([hw, ht], axis=-1), torch.long),
            "future": self._tensor(future),
            "future_calendar": self._tensor(np.stack([fw, ft], axis=-1), torch.long),
        }
        return inputs, base

    def _covariate_channels(
        self, frame: pd.DataFrame, origins: np.ndarray, hist_starts: np.ndarray, unique: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """The covariate channels of the history ``(N, H, L, 2K)`` and forecast ``(N, F, L, 2K)`` cycles.

        Per step: the covariate's residual over the model's own baseline applied to the
        covariate (the same recent-historic profile the target's residual is taken over, so a
        load that follows the temperature has a residual that follows the temperature's
        residual), and its standardised value; the forecast cycles read the future-known values
        at the forecast steps themselves.
        """
        L, H, F = int(self.cycle_length), int(self.history_cycles), int(self.horizon_cycles)
        N, K = len(origins), self.n_covariates
        scaler = self.covariate_scaler_
        assert scaler is not None
        known = self._covariates_at(frame, np.arange(len(frame)))  # (T, K)
        cov_frame = pd.DataFrame(known, index=frame.index)
        hist = np.stack([known[o - H * L : o] for o in origins.tolist()]).reshape(N, H, L, K)
        hist_base = self.baseline_.profiles_from(cov_frame, unique, 1)[np.searchsorted(unique, hist_starts)]
        fut = self._covariates_at(frame, origins[:, None] + np.arange(F * L)[None, :]).reshape(N, F, L, K)
        fut_base = self.baseline_.profiles_from(cov_frame, origins, F).reshape(N, F, L, K)

        def channels(values: np.ndarray, base: np.ndarray) -> np.ndarray:
            return np.concatenate([(values - base) / scaler.scale_, scaler.transform(values)], axis=-1)

        return channels(hist, hist_base), channels(fut, fut_base)

    def _forward(self, net: nn.Module, batch: Batch) -> torch.Tensor:
        return net(batch["history"], batch["history_calendar"], batch["future"], batch["future_calendar"])

    def predict_baseline(self, history: Any) -> pd.Series | pd.DataFrame:
        """The baseline's forecast from the same history (what the network adds its residual to)."""
        self._check_fitted()
        return self.baseline_.predict(history)
