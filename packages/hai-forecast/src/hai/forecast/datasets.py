"""Built-in real data without downloads, read from packages that ship it.

======================  ==============================================================  ===============
name                    series                                                          extra
======================  ==============================================================  ===============
``vic_elec``            hourly electricity demand of Victoria (AU), 2012-01-01 to        ``statsmodels``
                        2012-05-29, 3,600 values (statsmodels' MSTL test data,
                        ``tsa/stl/tests/results/mstl_elec_vic.csv``)
``simbench_load:NAME``  a SimBench 2016 load profile (active power, relative), e.g.       ``simbench``
                        ``H0-A`` (household), ``G1-A`` (business); 15-min, averaged to
                        hourly on CET (UTC+1) all year (8,784 values)
``simbench_pv:NAME``    a SimBench 2016 PV profile ``PV1`` … ``PV8``, hourly means        ``simbench``
``synthetic``           :func:`hai.forecast.data.synthetic_cyclic`, 120 days             none
======================  ==============================================================  ===============

SimBench profiles are read from the CSV files inside the installed ``simbench`` package
(``networks/1-complete_data-mixed-all-0-sw/{LoadProfile,RESProfile}.csv``) without importing
it (that would import pandapower). Nothing is fetched from the network.

>>> d = load("synthetic")
>>> d.cycle_length, len(d.y)
(24, 2880)
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import pandas as pd  # type: ignore[import-untyped]

from hai.forecast.data import as_frame, resample, synthetic_cyclic
from hai.shared import InputError, MissingPackageError

DATASETS: tuple[str, ...] = ("vic_elec", "simbench_load:H0-A", "simbench_pv:PV3", "synthetic")
_SIMBENCH_FOLDER = ("networks", "1-complete_data-mixed-all-0-sw")


@dataclass(frozen=True)
class Dataset:
    """A named series with what a forecaster needs to know about it."""

    name: str
    y: pd.Series
    description: str
    cycle_length: int = 24
    country: str | None = None
    subdiv: str | None = None
    source: str = ""


def _package_root(module: str, extra: str, what: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise MissingPackageError(
            f"{what} is read from the Python package '{module}', which is not installed",
            hint=f"pip install 'hai-forecast[{extra}]'",
        )
    return Path(next(iter(spec.submodule_search_locations)))


def _vic_elec() -> Dataset:
    path = _package_root("statsmodels", "statsmodels", "the Victoria demand data") / (
        "tsa/stl/tests/results/mstl_elec_vic.csv"
    )
    if not path.is_file():
        raise MissingPackageError(
            f"this statsmodels does not ship {path.name}", hint="pip install 'statsmodels>=0.14'"
        )
    raw = pd.read_csv(path)
    y = pd.Series(
        raw["y"].to_numpy(dtype=float), index=pd.DatetimeIndex(pd.to_datetime(raw["ds"])), name="demand"
    )
    y = as_frame(y)["demand"]
    return Dataset(
        "vic_elec",
        y,
        "hourly electricity demand, Victoria (Australia), 2012-01-01 to 2012-05-29",
        country="AU",
        subdiv="VIC",
        source=f"statsmodels: {path}",
    )


def _simbench(kind: str, profile: str) -> Dataset:
    folder = _package_root("simbench", "simbench", "SimBench profiles").joinpath(*_SIMBENCH_FOLDER)
    file = folder / ("LoadProfile.csv" if kind == "load" else "RESProfile.csv")
    if not file.is_file():
        raise MissingPackageError(f"this simbench does not ship {file}", hint="pip install 'simbench>=1.4'")
    column = f"{profile}_pload" if kind == "load" else profile
    header = pd.read_csv(file, sep=";", nrows=0).columns
    if column not in header:
        known = (
            sorted({c.rsplit("_", 1)[0] for c in header if c.endswith("_pload")})
            if kind == "load"
            else [c for c in header if c.startswith("PV")]
        )
        raise InputError(f"SimBench has no {kind} profile {profile!r}", hint=f"known: {', '.join(known)}")
    raw = pd.read_csv(file, sep=";", usecols=["time", column])
    # Local German time with daylight saving (a missing hour in March, a repeated one in
    # October); on CET (UTC+1) all year round the 15-min grid is regular.
    local = pd.DatetimeIndex(pd.to_datetime(raw["time"], format="%d.%m.%Y %H:%M"))
    index = local.tz_localize("Europe/Berlin", ambiguous="infer").tz_convert("Etc/GMT-1").tz_localize(None)
    y15 = pd.Series(raw[column].to_numpy(dtype=float), index=index, name=profile)
    y = resample(as_frame(y15), "1h")[profile]
    what = "load" if kind == "load" else "PV"
    return Dataset(
        f"simbench_{kind}:{profile}",
        y,
        f"SimBench 2016 {what} profile {profile} (relative active power), "
        "15-min averaged to hourly, CET (UTC+1)",
        country="DE",
        source=f"simbench: {file}",
    )


def load(name: str) -> Dataset:
    """Load a built-in data set by name (see the module docstring); no downloads.

    Raises :class:`hai.shared.MissingPackageError` naming the extra when its source package is
    missing, :class:`hai.shared.InputError` for an unknown name.
    """
    key = name.strip()
    if key == "vic_elec":
        return _vic_elec()
    if key == "synthetic":
        y = synthetic_cyclic(n_cycles=120, seed=0)
        return Dataset("synthetic", y, "synthetic daily load cycles with a weekend dip (120 days)")
    kind, _, profile = key.partition(":")
    if kind in ("simbench_load", "simbench_pv"):
        default = "H0-A" if kind == "simbench_load" else "PV3"
        return _simbench(kind.split("_")[1], profile or default)
    raise InputError(f"unknown data set {name!r}", hint=f"use one of {', '.join(DATASETS)}")
