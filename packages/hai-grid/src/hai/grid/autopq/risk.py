"""Probabilistic power flow: next-day scenarios from AutoPQ, solved as one batch, risk per hour.

1. Every load and static-generator profile of a net gets an AutoPQ quantile forecast of the
   next 24 hours (``P`` profiles, 17 levels per hour).
2. **Correlation**: the profiles' validation residuals (observed minus median, at the same
   time stamps) give a Gaussian rank correlation matrix ``C`` (normal scores of the ranks,
   then Pearson). Scenarios are drawn from a Gaussian copula with ``C``: ``z ~ N(0, C)`` per
   scenario and hour, ``u = Φ(z)``, and each profile's value is its forecast quantile function
   at ``u`` (linear between the 17 levels, flat below 1 % and above 99 %). So the marginals
   are AutoPQ's and the dependence between profiles is the one the data shows.
3. Load ``p_mw`` (and ``q_mvar``, constant power factor) and sgen ``p_mw`` are the nominal
   values times the profile's relative value; all scenarios × 24 hours are solved together
   by :func:`hai.grid.solve_batch`; line and transformer loadings are pandapower's
   ``loading_percent`` from those voltages.
4. Risk per hour: the fraction of scenarios with loading above ``max_loading_percent``
   (100 where the net has none) and with ``vm_pu`` outside ``[min_vm_pu, max_vm_pu]`` (0.9–1.1
   where missing); scenarios that did not converge are counted apart (``p_not_converged``),
   never as safe.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd  # type: ignore[import-untyped]

from hai.grid.autopq.quantiles import LEVELS
from hai.shared import InputError


@dataclass
class RiskResult:
    """Hour-by-hour probabilities (rows: the 24 forecast hours, columns: element indices)."""

    line_overload: pd.DataFrame
    trafo_overload: pd.DataFrame
    bus_voltage: pd.DataFrame
    p_not_converged: pd.Series
    n_scenarios: int
    correlation: pd.DataFrame
    line_loading_percent: np.ndarray  # (scenarios, hours, lines)
    trafo_loading_percent: np.ndarray
    vm_pu: np.ndarray  # (scenarios, hours, buses)
    converged: np.ndarray  # (scenarios, hours)

    def riskiest_lines(self, k: int = 10) -> pd.Series:
        """The ``k`` lines with the highest overload probability in any hour."""
        return self.line_overload.max(axis=0).sort_values(ascending=False).head(k)


def residual_correlation(residuals: Mapping[str, pd.Series]) -> pd.DataFrame:
    """Gaussian rank correlation of residual series aligned on their index (NaN → 0, PSD)."""
    from scipy.stats import norm, rankdata

    frame = pd.DataFrame(dict(residuals)).dropna()
    names = list(frame.columns)
    if len(frame) < 3:
        return pd.DataFrame(np.eye(len(names)), index=names, columns=names)
    scores = np.column_stack([norm.ppf((rankdata(frame[c].to_numpy()) - 0.5) / len(frame)) for c in names])
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = np.corrcoef(scores, rowvar=False) if len(names) > 1 else np.ones((1, 1))
    corr = np.nan_to_num(np.atleast_2d(corr), nan=0.0)
    np.fill_diagonal(corr, 1.0)
    w, v = np.linalg.eigh(corr)
    corr = (v * np.clip(w, 1e-9, None)) @ v.T
    d = np.sqrt(np.diag(corr))
    corr = corr / d[:, None] / d[None, :]
    return pd.DataFrame(corr, index=names, columns=names)


def sample_scenarios(
    quantiles: np.ndarray,
    correlation: np.ndarray,
    n_scenarios: int,
    *,
    seed: int = 0,
    levels: tuple[float, ...] = LEVELS,
) -> np.ndarray:
    """Scenarios ``(n, hours, P)`` from quantiles ``(P, hours, levels)`` with a Gaussian copula."""
    from scipy.stats import norm

    q = np.asarray(quantiles, dtype=float)
    n_profiles, hours, _ = q.shape
    rng = np.random.default_rng(seed)
    chol = np.linalg.cholesky(np.asarray(correlation, dtype=float) + 1e-12 * np.eye(n_profiles))
    z = rng.standard_normal((n_scenarios, hours, n_profiles)) @ chol.T
    u = norm.cdf(z)
    out = np.empty_like(u)
    for p in range(n_profiles):
        for h in range(hours):
            out[:, h, p] = np.interp(u[:, h, p], levels, q[p, h])
    return out


def _scaled(
    table: pd.DataFrame, column: str, profile_values: Mapping[str, np.ndarray], shape: tuple[int, int]
) -> np.ndarray:
    base = table[column].to_numpy(dtype=float)
    out = np.broadcast_to(base, (*shape, len(table))).copy()
    if "profile" in table:
        for pos, name in enumerate(table["profile"].astype(str).to_numpy()):
            if name in profile_values:
                out[:, :, pos] = base[pos] * profile_values[name]
    return out


def power_flow_risk(
    net: Any,
    load_values: Mapping[str, np.ndarray],
    sgen_values: Mapping[str, np.ndarray],
    *,
    correlation: pd.DataFrame | None = None,
    hours: pd.DatetimeIndex | None = None,
    device: str = "cpu",
) -> RiskResult:
    """Solve scenarios of relative profile values ``(n, hours)`` per profile name and count risk.

    ``load_values`` scales ``net.load`` rows whose ``profile`` names them (``p_mw`` and
    ``q_mvar``), ``sgen_values`` the ``net.sgen`` rows (``p_mw``); other rows stay nominal.
    """
    from hai.grid.batch import solve_batch
    from hai.grid.contingency import _branch_loading
    from hai.grid.network import compile_network
    from hai.grid.options import compile_options

    arrays = [np.asarray(v, dtype=float) for v in (*load_values.values(), *sgen_values.values())]
    if not arrays:
        raise InputError("no profile values given: nothing to sample")
    shape = arrays[0].shape
    if len(shape) != 2 or any(a.shape != shape for a in arrays):
        raise InputError(
            f"every profile needs values of shape (scenarios, hours); got {[a.shape for a in arrays]}"
        )
    n, h = shape
    load_p = _scaled(net.load, "p_mw", load_values, shape).reshape(n * h, -1)
    load_q = _scaled(net.load, "q_mvar", load_values, shape).reshape(n * h, -1)
    sgen_p = _scaled(net.sgen, "p_mw", sgen_values, shape).reshape(n * h, -1)
    kwargs: dict[str, Any] = {"load_p_mw": load_p, "load_q_mvar": load_q}
    if len(net.sgen):
        kwargs["sgen_p_mw"] = sgen_p
    batch = solve_batch(net, device=device, **kwargs)
    vm = batch.vm_pu.cpu().numpy()
    va = batch.va_degree.cpu().numpy()
    converged = batch.converged.cpu().numpy().astype(bool)
    compiled = compile_network(net, **compile_options(net, "run_contingency"))
    none = [("none", -1)] * (n * h)
    line = _branch_loading(compiled, "line", vm, va, none) if len(net.line) else np.zeros((n * h, 0))
    trafo = _branch_loading(compiled, "trafo", vm, va, none) if len(net.trafo) else np.zeros((n * h, 0))
    index = hours if hours is not None else pd.RangeIndex(h, name="hour")
    result = risk_from_results(net, vm, line, trafo, converged, n, h, index)
    names = list(load_values) + [k for k in sgen_values if k not in load_values]
    result.correlation = (
        correlation
        if correlation is not None
        else pd.DataFrame(np.eye(len(names)), index=names, columns=names)
    )
    return result


def _limit(table: pd.DataFrame, column: str, default: float) -> np.ndarray:
    if column in table:
        return table[column].fillna(default).to_numpy(dtype=float)
    return np.full(len(table), default)


def risk_from_results(
    net: Any,
    vm: np.ndarray,
    line: np.ndarray,
    trafo: np.ndarray,
    converged: np.ndarray,
    n: int,
    h: int,
    index: Any,
) -> RiskResult:
    """Probabilities per hour from batched results ordered scenario-major ``(n·h, ·)``."""
    ok = converged.reshape(n, h)
    counted = np.maximum(ok.sum(axis=0), 1)

    def prob(flags: np.ndarray, columns: Any) -> pd.DataFrame:
        f = flags.reshape(n, h, -1) & ok[:, :, None]
        return pd.DataFrame(f.sum(axis=0) / counted[:, None], index=index, columns=columns)

    with np.errstate(invalid="ignore"):
        over_line = line > _limit(net.line, "max_loading_percent", 100.0)[None, :]
        over_trafo = trafo > _limit(net.trafo, "max_loading_percent", 100.0)[None, :]
        bad_v = (vm < _limit(net.bus, "min_vm_pu", 0.9)[None, :]) | (
            vm > _limit(net.bus, "max_vm_pu", 1.1)[None, :]
        )
    return RiskResult(
        line_overload=prob(over_line, net.line.index),
        trafo_overload=prob(over_trafo, net.trafo.index),
        bus_voltage=prob(bad_v, net.bus.index),
        p_not_converged=pd.Series(1.0 - ok.mean(axis=0), index=index, name="p_not_converged"),
        n_scenarios=n,
        correlation=pd.DataFrame(),
        line_loading_percent=line.reshape(n, h, -1),
        trafo_loading_percent=trafo.reshape(n, h, -1),
        vm_pu=vm.reshape(n, h, -1),
        converged=ok,
    )


def _hourly(raw: pd.DataFrame, column: str) -> pd.Series:
    from hai.grid.autopq.data import hourly_series

    local = pd.DatetimeIndex(pd.to_datetime(raw["time"], format="%d.%m.%Y %H:%M"))
    index = local.tz_localize("Europe/Berlin", ambiguous="infer").tz_convert("Etc/GMT-1").tz_localize(None)
    return hourly_series(pd.Series(raw[column].to_numpy(dtype=float), index=index), name=column)


@dataclass
class NetRisk:
    """:func:`simbench_risk`'s answer: the net, the risk, and the forecasts behind it."""

    net: Any
    risk: RiskResult
    quantiles: dict[str, pd.DataFrame]
    forecasters: dict[str, str]
    day: pd.Timestamp


def simbench_risk(
    code: str,
    day: str | pd.Timestamp,
    *,
    n_scenarios: int = 200,
    weeks: int = 6,
    seed: int = 0,
    device: str = "cpu",
    **autopq: Any,
) -> NetRisk:
    """Risk of the SimBench net ``code`` on ``day``: one AutoPQ per load and sgen profile,
    fitted on the ``weeks`` weeks before ``day``; scenarios keep the profiles' correlation.

    ``autopq`` goes to :class:`hai.grid.AutoPQ` (e.g. ``epochs=5, n_trials=10``).
    """
    from hai.grid.autopq.data import SIMBENCH_HOLIDAYS
    from hai.grid.autopq.estimator import AutoPQ
    from hai.shared._optional import require
    from hai.shared.checks import positive_int

    positive_int("n_scenarios", n_scenarios, maximum=100_000)
    positive_int("weeks", weeks, maximum=52)
    sb = require("simbench", extra="simbench", distribution="hai-grid")
    try:
        net = sb.get_simbench_net(code)
    except Exception as exc:  # simbench raises plain errors for unknown codes
        raise InputError(f"cannot load the SimBench net {code!r}: {exc}".splitlines()[0]) from None
    start = pd.Timestamp(day).normalize()
    names: dict[str, tuple[str, str]] = {}
    for name in net.load.get("profile", pd.Series(dtype=str)).dropna().astype(str).unique():
        names[f"load:{name}"] = ("load", f"{name}_pload")
    for name in net.sgen.get("profile", pd.Series(dtype=str)).dropna().astype(str).unique():
        names[f"sgen:{name}"] = ("renewables", name)
    quantiles: dict[str, pd.DataFrame] = {}
    residuals: dict[str, pd.Series] = {}
    chosen: dict[str, str] = {}
    hours = pd.date_range(start, periods=24, freq="h")
    for key, (table, column) in names.items():
        if column not in net.profiles[table]:
            raise InputError(f"the net names profile {column!r}, which its profiles table {table!r} lacks")
        series = _hourly(net.profiles[table], column)
        history = series[(series.index >= start - pd.Timedelta(weeks=weeks)) & (series.index < start)]
        if len(history) < weeks * 168 or start + pd.Timedelta(hours=23) > series.index[-1] + pd.Timedelta(
            hours=0
        ):
            raise InputError(
                f"{day} needs {weeks} weeks of profile data before it and lies within the profile year",
                hint=f"the profiles cover {series.index[0]} to {series.index[-1]}",
            )
        limits = (0.0, None) if table == "renewables" else (None, None)
        # SimBench's load profiles follow the public holidays of one German state; PV and wind do not
        holidays = SIMBENCH_HOLIDAYS if table == "load" else None
        model = AutoPQ(forecast_limits=limits, holidays=holidays, seed=seed, **autopq).fit(history)
        quantiles[key] = model.predict(history)
        chosen[key] = model.forecaster_.name
        val = model.split_.origins("val", horizon=24, history=model.history_)
        val = val[pd.DatetimeIndex(history.index[val]).hour == 0]
        if len(val):
            q = model.quantiles_at(history, val)
            steps = (val[:, None] + np.arange(24)).ravel()
            resid = history.to_numpy()[steps] - q[..., LEVELS.index(0.5)].ravel()
            residuals[key] = pd.Series(resid, index=history.index[steps])
    keys = list(quantiles)
    corr = residual_correlation({k: residuals.get(k, pd.Series(dtype=float)) for k in keys}).reindex(
        index=keys, columns=keys
    )
    corr = corr.fillna(0.0)
    np.fill_diagonal(corr.values, 1.0)
    q = np.stack([quantiles[k].to_numpy() for k in keys])
    draws = sample_scenarios(q, corr.to_numpy(), n_scenarios, seed=seed)
    load_values = {k.split(":", 1)[1]: draws[:, :, i] for i, k in enumerate(keys) if k.startswith("load:")}
    sgen_values = {k.split(":", 1)[1]: draws[:, :, i] for i, k in enumerate(keys) if k.startswith("sgen:")}
    risk = power_flow_risk(net, load_values, sgen_values, correlation=corr, hours=hours, device=device)
    return NetRisk(net=net, risk=risk, quantiles=quantiles, forecasters=chosen, day=start)


def plot_risk(result: RiskResult, *, k: int = 10, title: str = "") -> Any:
    """Heat map of the overload probability of the ``k`` riskiest lines, hour by hour, and the
    probability of any voltage violation per hour."""
    from hai.grid.autopq.plots import _figure

    fig = _figure(figsize=(9, 4), layout="constrained")
    ax, ax_v = fig.subplots(1, 2, width_ratios=[3, 1])
    top = result.riskiest_lines(k).index
    data = result.line_overload[top].to_numpy().T
    image = ax.imshow(data, aspect="auto", vmin=0, vmax=1, cmap="Reds")
    ax.set_yticks(range(len(top)), [f"line {i}" for i in top], fontsize=7)
    ax.set_xlabel("hour")
    ax.set_title(title or "P(loading > max_loading_percent)", fontsize=9)
    fig.colorbar(image, ax=ax, fraction=0.05)
    ax_v.plot(result.bus_voltage.max(axis=1).to_numpy(), range(len(result.bus_voltage)), "C3.-")
    ax_v.set_xlim(0, 1)
    ax_v.invert_yaxis()
    ax_v.set_xlabel("max over buses of P(vm outside limits)", fontsize=7)
    ax_v.set_ylabel("hour")
    return fig
