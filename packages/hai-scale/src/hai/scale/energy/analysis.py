"""The study's analysis: energy against device-hours, E = α·(device-hours) + β.

The fit is ordinary least squares (``scipy.stats.linregress``) with 95 % confidence intervals
from Student's t and R², per workload and machine. α is also related to the samples and
updates each device processes per hour (the paper's finding: the factor depends on them).
Where no point has a measured energy, the report says energy is unavailable and why, and
shows time and device-hours only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from hai.shared import InputError, MissingPackageError

__all__ = ["LinearFit", "fit_energy", "report", "report_figures"]


@dataclass(frozen=True)
class LinearFit:
    """y = slope·x + intercept with 95 % intervals, R² and the number of points."""

    slope: float
    slope_ci: tuple[float, float]
    intercept: float
    intercept_ci: tuple[float, float]
    r2: float
    n: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _linregress(x: np.ndarray, y: np.ndarray) -> LinearFit:
    try:
        from scipy import stats
    except ImportError as exc:
        raise MissingPackageError(
            "the energy fit needs scipy", hint="pip install 'hai-scale[energy]'"
        ) from exc
    if x.size < 3:
        raise InputError(f"a fit with confidence intervals needs at least 3 points with energy, got {x.size}")
    if np.ptp(x) == 0:
        raise InputError("every point has the same device-hours: nothing to fit a slope to")
    res = stats.linregress(x, y)
    q = float(stats.t.ppf(0.975, x.size - 2))
    return LinearFit(
        slope=float(res.slope),
        slope_ci=(float(res.slope - q * res.stderr), float(res.slope + q * res.stderr)),
        intercept=float(res.intercept),
        intercept_ci=(
            float(res.intercept - q * res.intercept_stderr),
            float(res.intercept + q * res.intercept_stderr),
        ),
        r2=float(res.rvalue**2),
        n=int(x.size),
    )


def fit_energy(rows: Sequence[dict[str, Any]]) -> LinearFit | None:
    """Fit E [J] = α·device-hours + β over the rows with measured energy (None if there are none)."""
    measured = [r for r in rows if r.get("energy_j") is not None]
    if not measured:
        return None
    x = np.array([r["device_hours"] for r in measured], dtype=float)
    y = np.array([r["energy_j"] for r in measured], dtype=float)
    return _linregress(x, y)


def report(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Per point (time, device-hours, throughput, energy, metric) and the fit, as one mapping."""
    if not rows:
        raise InputError("the table has no finished points yet")
    fit = fit_energy(rows)
    unavailable = sorted(
        {reason for r in rows for rk in r.get("energy_unavailable", {}).values() for reason in rk.values()}
    )
    points = [
        {
            "name": r["name"],
            **r["point"],
            "wall_s": r["wall_s"],
            "device_hours": r["device_hours"],
            "samples_per_device_hour": r["samples_per_device_hour"],
            "updates_per_device_hour": r["updates_per_device_hour"],
            "energy_j": r["energy_j"],
            "j_per_device_hour": None if r["energy_j"] is None else r["energy_j"] / r["device_hours"],
            r["metric_name"]: r["metric"],
        }
        for r in rows
    ]
    return {
        "device_kind": rows[0]["device_kind"],
        "machine": rows[0]["machine"],
        "points": points,
        "fit": None if fit is None else fit.to_dict(),
        "energy_unavailable": [] if fit is not None else unavailable,
    }


def report_figures(rows: Sequence[dict[str, Any]]) -> Any:
    """A matplotlib figure: energy (or wall time) vs device-hours with the fit; metric vs global batch."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 3.6))
    ax_e, ax_m = fig.subplots(1, 2)
    x = np.array([r["device_hours"] for r in rows], dtype=float)
    worlds = sorted({r["point"]["world_size"] for r in rows})
    has_energy = all(r["energy_j"] is not None for r in rows)
    for world in worlds:
        sel = [i for i, r in enumerate(rows) if r["point"]["world_size"] == world]
        ys = [rows[i]["energy_j"] if has_energy else rows[i]["wall_s"] for i in sel]
        ax_e.scatter(x[sel], ys, label=f"{world} process(es)")
    fit = fit_energy(rows) if has_energy else None
    if fit is not None:
        grid = np.linspace(0, float(x.max()) * 1.05, 50)
        ax_e.plot(grid, fit.slope * grid + fit.intercept, color="k", lw=1, label=f"fit R²={fit.r2:.3f}")
    kind = rows[0]["device_kind"]
    ax_e.set(
        xlabel=f"{kind}-hours", ylabel="energy [J]" if has_energy else "wall time [s] (energy unavailable)"
    )
    ax_e.legend(fontsize=8)
    metric = rows[0]["metric_name"]
    for world in worlds:
        for local in sorted({r["point"]["local_batch"] for r in rows}):
            key = (world, local)
            chosen = [r for r in rows if (r["point"]["world_size"], r["point"]["local_batch"]) == key]
            chosen.sort(key=lambda r: r["point"]["global_batch"])
            batches = [r["point"]["global_batch"] for r in chosen]
            ax_m.plot(batches, [r["metric"] for r in chosen], marker="o", label=f"W={world}, local {local}")
    ax_m.set(xscale="log", xlabel="global batch", ylabel=f"test {metric}")
    ax_m.legend(fontsize=7)
    fig.tight_layout()
    return fig
