"""Probabilistic power flow: copula scenarios, pandapower-exact batched results, counted risks."""

from __future__ import annotations

import copy

import numpy as np
import pandapower as pp
import pandapower.networks as pn
import pandas as pd
import pytest

from hai.grid.autopq.quantiles import LEVELS
from hai.grid.autopq.risk import power_flow_risk, residual_correlation, sample_scenarios


def test_copula_keeps_marginals_and_correlation() -> None:
    from scipy.stats import norm

    levels = np.asarray(LEVELS)
    q = np.stack([norm.ppf(levels) * s + m for s, m in ((1.0, 0.0), (2.0, 5.0))])[:, None, :]  # (2, 1, 17)
    corr = np.array([[1.0, 0.7], [0.7, 1.0]])
    draws = sample_scenarios(q, corr, 40_000, seed=1)
    assert draws.shape == (40_000, 1, 2)
    for p in range(2):
        inner = [0.05, 0.25, 0.5, 0.75, 0.95]
        expected = np.interp(inner, levels, q[p, 0])
        np.testing.assert_allclose(np.quantile(draws[:, 0, p], inner), expected, atol=0.03 * (p + 1))
    # the ranks keep the copula's correlation (Gaussian rank correlation of the draws)
    est = residual_correlation({"a": pd.Series(draws[:, 0, 0]), "b": pd.Series(draws[:, 0, 1])})
    assert est.loc["a", "b"] == pytest.approx(0.7, abs=0.02)


def test_residual_correlation_recovers_rho_and_is_a_correlation_matrix() -> None:
    rng = np.random.default_rng(0)
    z = rng.multivariate_normal([0, 0, 0], [[1, 0.5, -0.3], [0.5, 1, 0], [-0.3, 0, 1]], size=20_000)
    idx = pd.date_range("2024-01-01", periods=len(z), freq="h")
    res = {k: pd.Series(np.exp(z[:, i]), index=idx) for i, k in enumerate("abc")}  # monotone transform
    res["flat"] = pd.Series(0.0, index=idx)  # a profile without residuals (PV at night)
    c = residual_correlation(res)
    assert c.loc["a", "b"] == pytest.approx(0.5, abs=0.02)
    assert c.loc["a", "c"] == pytest.approx(-0.3, abs=0.02)
    assert c.loc["flat", "a"] == pytest.approx(0.0, abs=1e-6)
    np.testing.assert_allclose(np.diag(c), 1.0)
    assert np.linalg.eigvalsh(c.to_numpy()).min() > -1e-9


@pytest.fixture(scope="module")
def case():
    net = pn.example_simple()
    net.load["profile"] = "A"
    net.sgen["profile"] = "B"
    net.line["max_loading_percent"] = 20.0
    rng = np.random.default_rng(3)
    n, h = 12, 3
    load = {"A": rng.uniform(0.2, 2.0, size=(n, h))}
    sgen = {"B": rng.uniform(0.0, 1.0, size=(n, h))}
    return net, load, sgen, power_flow_risk(net, load, sgen)


def test_batched_scenarios_equal_pandapower(case) -> None:
    net, load, sgen, result = case
    assert result.converged.all()
    for s, hour in ((0, 0), (5, 2), (11, 1)):
        ref = copy.deepcopy(net)
        ref.load["p_mw"] = net.load.p_mw * load["A"][s, hour]
        ref.load["q_mvar"] = net.load.q_mvar * load["A"][s, hour]
        ref.sgen["p_mw"] = net.sgen.p_mw * sgen["B"][s, hour]
        pp.runpp(ref, tolerance_mva=1e-10)
        np.testing.assert_allclose(result.vm_pu[s, hour], ref.res_bus.vm_pu.to_numpy(), atol=1e-8)
        # a line behind an open line switch: hai's loading is NaN (pandapower: its charging current)
        open_lines = set(net.switch.element[(net.switch.et == "l") & ~net.switch.closed])
        live = np.array([i not in open_lines for i in net.line.index])
        loading = result.line_loading_percent[s, hour]
        assert np.isnan(loading[~live]).all()
        np.testing.assert_allclose(
            loading[live], ref.res_line.loading_percent.to_numpy()[live], rtol=1e-6, atol=1e-8
        )
        np.testing.assert_allclose(
            result.trafo_loading_percent[s, hour],
            ref.res_trafo.loading_percent.to_numpy(),
            rtol=1e-6,
            atol=1e-8,
        )


def test_probabilities_are_the_counted_frequencies(case) -> None:
    net, _, _, result = case
    n, h, n_line = result.line_loading_percent.shape
    assert n == result.n_scenarios == 12
    for hour in range(h):
        for pos in range(n_line):
            count = sum(result.line_loading_percent[s, hour, pos] > 20.0 for s in range(n))
            assert result.line_overload.iloc[hour, pos] == count / n
        low = net.bus.get("min_vm_pu", pd.Series(0.9, index=net.bus.index)).fillna(0.9).to_numpy()
        high = net.bus.get("max_vm_pu", pd.Series(1.1, index=net.bus.index)).fillna(1.1).to_numpy()
        for pos in range(len(net.bus)):
            count = sum(not (low[pos] <= result.vm_pu[s, hour, pos] <= high[pos]) for s in range(n))
            assert result.bus_voltage.iloc[hour, pos] == count / n
    p = result.line_overload.to_numpy()
    assert p.max() > 0.0
    assert p.min() < 1.0
    assert (result.p_not_converged == 0.0).all()
    assert result.riskiest_lines(2).index[0] == result.line_overload.max().idxmax()


def test_plot_risk(case) -> None:
    pytest.importorskip("matplotlib")
    from hai.grid.autopq.risk import plot_risk

    assert len(plot_risk(case[3], k=3).axes) >= 2


def test_risk_cli_prints_the_result(case, monkeypatch, capsys, tmp_path) -> None:
    import argparse
    import json

    from hai.grid.autopq import risk as risk_module
    from hai.grid.cli import register

    net, _, _, result = case

    def fake(code, day, **kwargs):
        assert code == "1-MV-rural--0-sw"
        assert kwargs["n_scenarios"] == 12
        return risk_module.NetRisk(net=net, risk=result, quantiles={}, forecasters={}, day=pd.Timestamp(day))

    monkeypatch.setattr(risk_module, "simbench_risk", fake)
    parser = argparse.ArgumentParser(prog="hai grid")
    register(parser)
    png = tmp_path / "risk.png"
    args = parser.parse_args(
        ["risk", "--net", "1-MV-rural--0-sw", "--scenarios", "12", "--top", "2", "--json", "--plot", str(png)]
    )
    assert args.handler(args) == 0
    out = json.loads(capsys.readouterr().out)
    top = result.riskiest_lines(2)
    assert out["riskiest_lines"] == {str(k): v for k, v in top.items()}
    assert out["scenarios"] == 12
    assert png.read_bytes()[:4] == b"\x89PNG"


@pytest.mark.slow
def test_simbench_risk_end_to_end() -> None:
    pytest.importorskip("simbench")
    pytest.importorskip("FrEIA")
    from hai.grid.autopq.risk import simbench_risk

    out = simbench_risk(
        "1-MV-rural--0-sw", "2016-03-10", n_scenarios=10, weeks=2, epochs=1, n_trials=1, forecaster="profile",
        blocks=2, sample_size=20,
    )  # fmt: skip
    assert out.risk.line_overload.shape == (24, len(out.net.line))
    assert len(out.quantiles) == 22  # 10 load and 12 sgen profiles
    assert (out.risk.line_overload.to_numpy() >= 0).all()
    corr = out.risk.correlation.to_numpy()
    np.testing.assert_allclose(np.diag(corr), 1.0)
    assert np.linalg.eigvalsh(corr).min() > -1e-9
    for q in out.quantiles.values():
        assert (np.diff(q.to_numpy(), axis=1) >= 0).all()
