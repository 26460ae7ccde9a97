"""Figures of power-flow results: the voltage profile and the branch loadings.

>>> from hai.grid import load_case, runpp
>>> net = load_case("case9")
>>> _ = runpp(net)
>>> fig = plot_power_flow(net)
>>> len(fig.axes)
2
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hai.shared import MissingPackageError


def _figure(**kwargs: Any) -> Any:
    try:
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise MissingPackageError("plots need matplotlib", hint="pip install 'hai-grid[demo]'") from exc
    return Figure(**kwargs)


def plot_power_flow(net: Any, *, title: str = "") -> Any:
    """Voltage magnitude per bus and loading per line/transformer of a solved net."""
    fig = _figure(figsize=(9, 3.6), layout="constrained")
    ax_v, ax_l = fig.subplots(1, 2)
    vm = net.res_bus.vm_pu.to_numpy()
    ax_v.plot(np.arange(len(vm)), vm, ".", ms=4)
    if "max_vm_pu" in net.bus and "min_vm_pu" in net.bus:
        ax_v.plot(np.arange(len(vm)), net.bus.max_vm_pu.to_numpy(), "r_", ms=3, lw=0)
        ax_v.plot(np.arange(len(vm)), net.bus.min_vm_pu.to_numpy(), "r_", ms=3, lw=0)
    ax_v.set_xlabel("bus (position in net.bus)")
    ax_v.set_ylabel("vm_pu")
    ax_v.set_title("voltage profile", fontsize=9)
    loadings = [
        (name, net[f"res_{name}"].loading_percent.to_numpy())
        for name in ("line", "trafo")
        if len(net[name]) and "loading_percent" in net[f"res_{name}"]
    ]
    offset = 0
    for name, loading in loadings:
        ax_l.bar(np.arange(len(loading)) + offset, loading, width=1.0, label=name)
        offset += len(loading)
    ax_l.axhline(100.0, color="r", lw=0.8)
    ax_l.set_xlabel("branch")
    ax_l.set_ylabel("loading_percent")
    ax_l.set_title("branch loading", fontsize=9)
    if loadings:
        ax_l.legend(fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def plot_contingency_voltages(
    vm_pu: np.ndarray, *, reference: np.ndarray | None = None, base: np.ndarray | None = None, title: str = ""
) -> Any:
    """Per-bus minimum and maximum voltage over outages (rows of ``vm_pu``), NaN ignored.

    ``reference`` (same shape, e.g. pandapower's) is drawn as markers on top; ``base`` is the
    intact grid's profile.
    """
    fig = _figure(figsize=(9, 3.6), layout="constrained")
    ax = fig.subplots()
    x = np.arange(vm_pu.shape[1])
    lo, hi = np.nanmin(vm_pu, axis=0), np.nanmax(vm_pu, axis=0)
    ax.fill_between(x, lo, hi, alpha=0.3, step="mid", label="hai: min–max over outages")
    if base is not None:
        ax.plot(x, base, "k-", lw=0.8, label="intact grid")
    if reference is not None:
        ax.plot(x, np.nanmin(reference, axis=0), "rv", ms=3, label="pandapower min")
        ax.plot(x, np.nanmax(reference, axis=0), "r^", ms=3, label="pandapower max")
    ax.set_xlabel("bus (position in net.bus)")
    ax.set_ylabel("vm_pu")
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title, fontsize=10)
    return fig


def plot_series_voltages(vm_pu: np.ndarray, *, title: str = "") -> Any:
    """Minimum and maximum bus voltage per step of a (steps, n_bus) array (NaN ignored)."""
    fig = _figure(figsize=(7, 3.4), layout="constrained")
    ax = fig.subplots()
    steps = np.arange(vm_pu.shape[0])
    with np.errstate(all="ignore"):
        ax.plot(steps, np.nanmin(vm_pu, axis=1), label="min vm_pu")
        ax.plot(steps, np.nanmax(vm_pu, axis=1), label="max vm_pu")
    ax.set_xlabel("step")
    ax.set_ylabel("vm_pu")
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title, fontsize=10)
    return fig
