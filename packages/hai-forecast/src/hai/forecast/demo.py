"""hai-forecast's part of ``hai demo``: ReCycle against its baselines on the Victoria demand.

Backtests seasonal naive, the last-profile baseline, ridge ARX, ReCycle (over that baseline and over
seasonal naive) on the last 20 % of the hourly Victoria electricity demand (7-day history,
1-day horizon; the synthetic series when statsmodels is missing), trains the token-per-step
transformer for a few epochs to time it on the same window, and draws forecast, baseline and
truth; then appends the small pruning study of :mod:`hai.forecast.pruning.demo` (its table,
figures and summary). Runs torch on one thread (the models are tiny); about a minute on
2 CPU cores.
"""

from __future__ import annotations

import contextlib
from typing import Any

from hai.forecast.backtest import BacktestResult, backtest
from hai.forecast.baselines import LastProfile, SeasonalNaive
from hai.forecast.data import synthetic_cyclic
from hai.forecast.datasets import load
from hai.forecast.recycle import ReCycle
from hai.forecast.regression import RidgeARX
from hai.forecast.transformer import StepTransformer
from hai.shared import DemoContext, Figure, MissingPackageError, Section, Table, resolve_device


def _figure(result: BacktestResult, title: str) -> Any:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure as MplFigure

    fig = MplFigure(figsize=(9, 3.6))
    ax = fig.subplots()
    window = result.window(-1).join(result.window(-2), rsuffix="_prev", how="outer")
    for i in (-2, -1):
        w = result.window(i)
        ax.plot(w.index, w["truth"], color="k", label="truth" if i == -1 else None)
        ax.plot(w.index, w["forecast"], color="C0", label="ReCycle" if i == -1 else None)
        ax.plot(
            w.index,
            w["baseline"],
            color="C1",
            linestyle="--",
            label="baseline (last profile)" if i == -1 else None,
        )
        ax.plot(
            w.index,
            w["seasonal_naive"],
            color="C2",
            linestyle=":",
            label="seasonal naive" if i == -1 else None,
        )
    ax.set_xlim(window.index[0], window.index[-1])
    ax.set_title(title)
    ax.set_ylabel("demand")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.autofmt_xdate()
    fig.tight_layout()
    return fig


def run(context: DemoContext) -> Section:
    """Run the forecasting demo and return its report section."""
    device = str(resolve_device(context.device))
    try:
        data = load("vic_elec")
        y, country, subdiv, label = data.y, data.country, data.subdiv, "Victoria demand (hourly, 2012)"
    except MissingPackageError:
        y, country, subdiv, label = (
            synthetic_cyclic(n_cycles=150, seed=context.seed),
            None,
            None,
            "synthetic",
        )
    cal: dict[str, Any] = {"country": country, "subdiv": subdiv}
    train: dict[str, Any] = {"seed": context.seed, "device": device, **cal}
    results = {
        "seasonal naive": backtest(SeasonalNaive(**cal), y),
        "last profile": backtest(LastProfile(**cal), y),
        "ridge ARX": backtest(RidgeARX(**cal), y),
        "ReCycle (last profile)": backtest(ReCycle(baseline="last_profile", **train), y),
        "ReCycle (seasonal naive)": backtest(ReCycle(baseline="seasonal_naive", **train), y),
    }
    transformer = StepTransformer(epochs=3, patience=None, **train).fit(y.iloc[: int(len(y) * 0.8)])
    recycle = results["ReCycle (last profile)"]
    recycle_epoch = float(recycle.extra["epoch_time_s"])
    ratio = transformer.epoch_time_s_ / recycle_epoch
    metrics: dict[str, float | int | str | bool | None] = {"data": label, "test_windows": recycle.n_origins}
    for name, r in results.items():
        key = name.lower().replace(" ", "_").replace("(", "").replace(")", "")
        metrics[f"{key}_mae"] = r.metrics["mae"]
        metrics[f"{key}_mase"] = r.metrics["mase"]  # over the weekly naive forecast
        metrics[f"{key}_mase_day"] = r.metrics["mase_day"]  # over the day-lag seasonal naive
    metrics["recycle_epoch_s"] = recycle_epoch
    metrics["transformer_epoch_s"] = transformer.epoch_time_s_
    metrics["epoch_time_ratio"] = ratio
    energy = recycle.fit_cost.total_energy_j if recycle.fit_cost is not None else None
    metrics["recycle_training_energy_j"] = energy
    table = Table(
        caption=f"Rolling-origin backtest on the last 20 % of the {label} series "
        f"({recycle.n_origins} daily forecasts, 7-day history)",
        columns=["model", "MAE", "RMSE", "MAPE %", "MASE (week)", "MASE (day)", "NSE", "RPE", "s/epoch"],
        rows=[
            [
                name,
                round(r.metrics["mae"], 2),
                round(r.metrics["rmse"], 2),
                round(r.metrics["mape"], 2),
                round(r.metrics["mase"], 3),
                round(r.metrics["mase_day"], 3),
                round(r.metrics["nse"], 3),
                round(r.metrics["rpe"], 3),
                round(float(r.extra["epoch_time_s"]), 4) if "epoch_time_s" in r.extra else None,
            ]
            for name, r in results.items()
        ]
        + [
            [
                "token-per-step transformer (3 epochs, timing only)",
                None,
                None,
                None,
                None,
                None,
                None,
                None,
                round(transformer.epoch_time_s_, 4),
            ]
        ],
    )
    figures: list[Figure] = []
    with contextlib.suppress(ImportError):  # matplotlib comes with the demo extra
        figures.append(
            Figure.from_matplotlib(
                _figure(recycle, f"{label}: the last two test days"),
                "recycle-forecast",
                "ReCycle's day-ahead forecasts, its last-profile baseline, seasonal naive and the truth",
            )
        )
    best = min(results, key=lambda n: results[n].metrics["mae"])
    from hai.forecast.pruning.demo import pruning_section

    pruning = pruning_section(context)
    metrics.update({f"pruning_{k}": v for k, v in pruning.metrics.items()})
    return Section(
        domain="forecast",
        title="ReCycle: residual cyclic transformer for load forecasting",
        summary=(
            "ReCycle compresses each day into one token and learns the residual over a "
            f"recent-historic-profile baseline. On {label}, the best day-ahead MAE here is {best}'s "
            f"({results[best].metrics['mae']:.4g}); an epoch of ReCycle takes {recycle_epoch * 1000:.0f} ms, "
            f"{ratio:.0f}x less than the token-per-step transformer on the same 7-day window. "
            "Training energy: "
            + (f"{energy:.1f} J." if energy is not None else "unavailable on this machine.")
            + (
                ""
                if figures
                else " (No figure: matplotlib is not installed; pip install 'hai-forecast[demo]'.)"
            )
            + f" {pruning.title}: {pruning.summary}"
        ),
        metrics=metrics,
        figures=figures + pruning.figures,
        tables=[table, *pruning.tables],
    )
