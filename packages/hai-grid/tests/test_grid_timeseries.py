"""run_timeseries: every step matches pandapower; warm steps need fewer iterations; failures restart cold."""

from __future__ import annotations

import copy
import warnings

import numpy as np
import pandapower as pp
import pytest

from hai.grid import load_case, run_timeseries
from hai.shared import InputError


def test_every_step_matches_pandapower_and_warm_steps_are_cheaper() -> None:
    net = load_case("case118")
    steps = 6
    scale = np.linspace(0.9, 1.0, steps)[:, None]  # 2 % load change per step
    load_p = scale * net.load.p_mw.to_numpy()[None, :]
    load_q = scale * net.load.q_mvar.to_numpy()[None, :]
    series = run_timeseries(net, load_p, load_q, device="cpu")
    assert series.vm_pu.shape == (steps, len(net.bus))
    assert bool(series.converged.all())
    assert float(series.max_mismatch_mva.max()) <= 1e-8
    assert all(int(series.iterations[k]) < int(series.iterations[0]) for k in range(1, steps))
    ref = copy.deepcopy(net)
    for k in range(steps):
        ref.load["p_mw"] = load_p[k]
        ref.load["q_mvar"] = load_q[k]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pp.runpp(ref, tolerance_mva=1e-10)
        assert np.abs(series.vm_pu[k].numpy() - ref.res_bus.vm_pu.to_numpy()).max() < 1e-6
        assert np.abs(series.va_degree[k].numpy() - ref.res_bus.va_degree.to_numpy()).max() < 1e-4


def test_a_failed_step_is_flagged_and_the_next_starts_cold() -> None:
    net = load_case("case9")
    base = net.load.p_mw.to_numpy()[None, :]
    load_p = np.array([[1.0], [12.0], [1.0], [1.0]]) * base
    series = run_timeseries(net, load_p, max_iteration=10)
    assert series.converged.tolist() == [True, False, True, True]
    assert bool(series.vm_pu[1].isnan().all())
    assert int(series.iterations[2]) > int(series.iterations[3])  # cold start, then warm
    assert np.allclose(series.vm_pu[0].numpy(), series.vm_pu[2].numpy(), atol=1e-9)


def test_bad_series_inputs() -> None:
    net = load_case("case9")
    with pytest.raises(InputError, match="steps"):
        run_timeseries(net, np.ones((3, 3)), load_q_mvar=np.ones((2, 3)))
    with pytest.raises(InputError, match="load_p_mw"):
        run_timeseries(net, None)
