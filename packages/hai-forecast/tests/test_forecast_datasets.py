"""Built-in data sets, read offline from the packages that ship them."""

from __future__ import annotations

import importlib.util

import numpy as np
import pandas as pd
import pytest

from hai.forecast import datasets
from hai.shared import InputError, MissingPackageError


def test_vic_elec_is_hourly_victoria_demand() -> None:
    d = datasets.load("vic_elec")
    assert len(d.y) == 3600
    assert d.y.index[0] == pd.Timestamp("2012-01-01 00:00")
    assert d.y.index[-1] == pd.Timestamp("2012-05-29 23:00")
    assert pd.Timedelta(d.y.index.freq) == pd.Timedelta("1h")
    assert (d.country, d.subdiv, d.cycle_length) == ("AU", "VIC", 24)
    assert 3000 < float(d.y.min()) < float(d.y.max()) < 20000
    assert d.y.iloc[0] == pytest.approx(7926.529376)


def test_simbench_load_profile_is_hourly_and_regular() -> None:
    if importlib.util.find_spec("simbench") is None:
        pytest.fail("the test extra installs simbench; install 'hai-forecast[test]'")
    d = datasets.load("simbench_load:H0-A")
    assert len(d.y) == 366 * 24  # 2016 is a leap year; the DST hours are mapped to CET
    assert pd.Timedelta(d.y.index.freq) == pd.Timedelta("1h")
    assert d.country == "DE"
    assert np.isfinite(d.y.to_numpy()).all()
    pv = datasets.load("simbench_pv:PV3")
    assert float(pv.y.min()) == 0.0  # nights
    with pytest.raises(InputError, match="no load profile 'XX'"):
        datasets.load("simbench_load:XX")


def test_missing_source_package_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name in ("statsmodels", "simbench") else real(name, *a),
    )
    with pytest.raises(MissingPackageError, match=r"hai-forecast\[statsmodels\]"):
        datasets.load("vic_elec")
    with pytest.raises(MissingPackageError, match=r"hai-forecast\[simbench\]"):
        datasets.load("simbench_load:H0-A")


def test_synthetic_and_unknown() -> None:
    assert len(datasets.load("synthetic").y) == 120 * 24
    with pytest.raises(InputError, match="unknown data set"):
        datasets.load("etth1")
