"""identify_line_parameters recovers perturbed line r/x from pandapower's own results."""

from __future__ import annotations

import copy
import warnings

import numpy as np
import pandapower as pp
import pytest

from hai.grid import identify_line_parameters, load_case
from hai.shared import InputError


def _measured(net: object) -> dict[str, object]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pp.runpp(net, tolerance_mva=1e-10)
    res_bus, res_line = net.res_bus, net.res_line  # type: ignore[attr-defined]
    return {
        "vm_pu": res_bus.vm_pu,
        "va_degree": res_bus.va_degree,
        "p_from_mw": res_line.p_from_mw,
        "q_from_mvar": res_line.q_from_mvar,
        "p_to_mw": res_line.p_to_mw,
        "q_to_mvar": res_line.q_to_mvar,
    }


def test_recovers_perturbed_r_and_x_from_noise_free_measurements() -> None:
    truth = load_case("case9")
    measured = _measured(truth)
    guess = copy.deepcopy(truth)
    lines = [1, 4, 7]
    for line, (fr, fx) in zip(lines, [(1.4, 0.7), (0.6, 1.3), (1.25, 1.5)], strict=True):
        guess.line.loc[line, "r_ohm_per_km"] *= fr
        guess.line.loc[line, "x_ohm_per_km"] *= fx
    result = identify_line_parameters(guess, measured, lines)
    r_true = truth.line.r_ohm_per_km.loc[lines].to_numpy()
    x_true = truth.line.x_ohm_per_km.loc[lines].to_numpy()
    assert result.converged
    assert np.abs(result.r_ohm_per_km / r_true - 1).max() < 1e-6
    assert np.abs(result.x_ohm_per_km / x_true - 1).max() < 1e-6
    np.testing.assert_array_equal(result.lines, lines)
    # the net given is not modified
    assert guess.line.r_ohm_per_km.at[1] == pytest.approx(1.4 * truth.line.r_ohm_per_km.at[1])


def test_partial_measurements_with_nan_still_identify_one_line() -> None:
    truth = load_case("case9")
    measured = _measured(truth)
    p_from = np.asarray(measured["p_from_mw"], dtype=float).copy()
    p_from[[0, 2]] = np.nan  # not measured
    guess = copy.deepcopy(truth)
    guess.line.loc[5, "x_ohm_per_km"] *= 0.7
    result = identify_line_parameters(guess, {"vm_pu": measured["vm_pu"], "p_from_mw": p_from}, [5])
    assert abs(result.x_ohm_per_km[0] / truth.line.x_ohm_per_km.at[5] - 1) < 1e-6


def test_bad_input_raises_input_error() -> None:
    net = load_case("case9")
    measured = _measured(copy.deepcopy(net))
    with pytest.raises(InputError, match="does not have"):
        identify_line_parameters(net, measured, [99])
    with pytest.raises(InputError, match="shape"):
        identify_line_parameters(net, {"vm_pu": np.ones(5)}, [1])
    with pytest.raises(InputError, match="shape"):
        identify_line_parameters(net, {"p_from_mw": np.ones(len(net.line) + 1)}, [1])
    with pytest.raises(InputError, match="unknown measurement"):
        identify_line_parameters(net, {"i_ka": np.ones(len(net.line))}, [1])
    with pytest.raises(InputError, match="no measurements"):
        identify_line_parameters(net, {}, [1])
    with pytest.raises(InputError, match="more than once"):
        identify_line_parameters(net, measured, [1, 1])
    with pytest.raises(InputError, match="no lines"):
        identify_line_parameters(net, measured, [])
    zero = int(net.line.index[net.line.r_ohm_per_km == 0][0])  # case9 has lossless lines
    with pytest.raises(InputError, match="must be positive"):
        identify_line_parameters(net, measured, [zero])
