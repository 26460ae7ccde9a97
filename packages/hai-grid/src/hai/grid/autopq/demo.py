"""AutoPQ's part of ``hai demo``: quantile forecasts of a load and a PV series, and the risk
they mean for a small network.

Synthetic hourly data (8 weeks each, embedded generator, no download): AutoPQ's default
configuration (auto forecaster, ``sampling_std`` tuned on validation CRPS) is fitted on
each series; the report gives the test CRPS, pinball loss and coverage of the 80 % and 98 %
intervals against climatology (weekday × hour quantiles), a fan chart, the PIT histogram,
and the hour-by-hour overload and voltage risk of pandapower's ``example_simple`` when its
loads follow the load forecast and its generator the PV forecast (Gaussian copula with the
series' residual correlation, one batched power flow). About a minute on 2 CPU cores.

``run(context)`` returns a :class:`hai.shared.Section`; hai-grid's demo may append it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd  # type: ignore[import-untyped]

from hai.grid.autopq import metrics
from hai.grid.autopq.data import synthetic_series, windows
from hai.grid.autopq.estimator import AutoPQ
from hai.grid.autopq.plots import plot_fan_chart, plot_pit
from hai.grid.autopq.quantiles import LEVELS
from hai.grid.autopq.risk import plot_risk, power_flow_risk, residual_correlation, sample_scenarios
from hai.shared import DemoContext, Figure, Section, Table

WEEKS = 8
SETTINGS: dict[str, Any] = {"epochs": 60, "n_trials": 30}


def climatology(y: pd.Series, known: int, origins: np.ndarray, horizon: int = 24) -> np.ndarray:
    """Weekday × hour empirical quantiles of ``y[:known]`` for every step after each origin."""
    slot = y.index.dayofweek.to_numpy() * 24 + y.index.hour.to_numpy()
    values = y.to_numpy()
    table = {int(s): np.quantile(values[:known][slot[:known] == s], LEVELS) for s in np.unique(slot[:known])}
    steps = windows(np.arange(len(y)), origins, horizon)
    return np.stack([table[int(s)] for s in slot[steps].ravel()]).reshape(len(origins), horizon, -1)


def run(context: DemoContext) -> Section:
    """Run the demo and return its report section."""
    series = {
        "load": synthetic_series("load", weeks=WEEKS, seed=context.seed),
        "pv": synthetic_series("pv", weeks=WEEKS, seed=context.seed + 1),
    }
    rows: list[list[Any]] = []
    figures: list[Figure] = []
    models: dict[str, AutoPQ] = {}
    out: dict[str, Any] = {}
    for name, y in series.items():
        limits = (0.0, None) if name == "pv" else (None, None)
        model = AutoPQ(forecast_limits=limits, seed=context.seed, **SETTINGS).fit(y)
        models[name] = model
        scores = model.evaluate()
        origins = model.split_.origins("test", horizon=24, history=model.history_)
        truth = windows(y.to_numpy(), origins, 24)
        clim = metrics.score(truth, climatology(y, model.split_.val_end, origins))
        for method, s in (("AutoPQ default", scores), ("climatology", clim)):
            rows.append(
                [name, method, round(s["crps"], 4), round(s["pinball"], 4), round(s["coverage_80"], 3),
                 round(s["coverage_98"], 3)]
            )  # fmt: skip
        out[f"{name}_crps"] = round(scores["crps"], 4)
        out[f"{name}_crps_gain_vs_climatology"] = round(1 - scores["crps"] / clim["crps"], 3)
        out[f"{name}_coverage_80"] = round(scores["coverage_80"], 3)
        out[f"{name}_coverage_98"] = round(scores["coverage_98"], 3)
        out[f"{name}_forecaster"] = model.forecaster_.name
        daily = origins[y.index[origins].hour == 0][:3]
        q = model.quantiles_at(y, daily).reshape(-1, len(LEVELS))
        steps = (daily[:, None] + np.arange(24)).ravel()
        frame = pd.DataFrame(q, index=y.index[steps], columns=list(LEVELS))
        figures.append(
            Figure.from_matplotlib(
                plot_fan_chart(frame, actual=y.iloc[steps], title=f"{name}: three test days"),
                f"autopq-fan-{name}",
                f"AutoPQ quantiles ({model.forecaster_.name} + cINN) of three {name} test days",
            )
        )
        q_all = model.quantiles_at(y, origins)
        figures.append(
            Figure.from_matplotlib(
                plot_pit(*metrics.pit_histogram(truth, q_all), title=f"{name}: PIT"),
                f"autopq-pit-{name}",
                f"PIT histogram of the {name} test forecasts (1 = calibrated)",
            )
        )

    # risk: next day after the series, load profile on every load, PV on every sgen
    import pandapower.networks as pn  # type: ignore[import-untyped]

    net = pn.example_simple()
    net.load["profile"] = "load"
    net.sgen["profile"] = "pv"
    net.line["max_loading_percent"] = 30.0  # a tight limit, so that the map shows something
    quantiles = np.stack([models[k].predict(series[k]).to_numpy() for k in ("load", "pv")])
    relative = quantiles / np.array([series["load"].mean(), series["pv"].max()])[:, None, None]
    resid = {}
    for k in ("load", "pv"):
        m = models[k]
        val = m.split_.origins("val", horizon=24, history=m.history_)
        val = val[series[k].index[val].hour == 0]
        qv = m.quantiles_at(series[k], val)
        idx = (val[:, None] + np.arange(24)).ravel()
        resid[k] = pd.Series(series[k].to_numpy()[idx] - qv[..., 8].ravel(), index=series[k].index[idx])
    corr = residual_correlation(resid)
    draws = sample_scenarios(relative, corr.to_numpy(), 200, seed=context.seed)
    hours = models["load"].predict(series["load"]).index
    risk = power_flow_risk(
        net, {"load": draws[:, :, 0]}, {"pv": draws[:, :, 1]}, correlation=corr, hours=hours
    )
    figures.append(
        Figure.from_matplotlib(
            plot_risk(risk, k=4, title="example_simple: P(line loading > 30 %)"),
            "autopq-risk",
            "Hour-by-hour overload probability of the riskiest lines over 200 scenarios",
        )
    )
    out["risk_max_line_overload_probability"] = round(float(risk.line_overload.to_numpy().max()), 3)
    out["risk_scenarios"] = risk.n_scenarios
    out["load_pv_residual_correlation"] = round(float(corr.iloc[0, 1]), 3)
    return Section(
        domain="grid",
        title="AutoPQ: quantile forecasts from point forecasts, and the risk they mean",
        summary=(
            "AutoPQ (default configuration: automatic point forecaster, cINN with additive latent "
            "noise, sampling_std tuned with optuna on validation CRPS, spread calibrated on validation) "
            f"on {WEEKS} weeks of synthetic hourly load and PV, scored on the "
            "test part (the last 20 %) against climatology; then 200 next-day scenarios of both "
            "(Gaussian copula) solved as one batched power flow of pandapower's example_simple."
        ),
        metrics=out,
        figures=figures,
        tables=[
            Table(
                "Test scores (lower CRPS and pinball are better; coverage nominal 0.8 and 0.98)",
                ["series", "method", "CRPS", "pinball", "coverage 80 %", "coverage 98 %"],
                rows,
            )
        ],
    )
