"""Screening mode of run_contingency: the violations are exactly those of the exact N-1.

Recall (and precision) 1.0 is an invariant of the design (an outage stops only when every
status is certain under the error bound), so it is asserted exactly, on limits chosen to
create many violations and many elements near their limits.
"""

from __future__ import annotations

import numpy as np
import pytest

from hai.grid import load_case, run_contingency


def _keys(result: object) -> set[tuple[object, str, int]]:
    return {(v["outage"], v["element"], v["index"]) for v in result.violations}  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("case", "vm_min", "vm_max", "loading"),
    [("case30", 0.96, 1.05, 60.0), ("case118", 0.96, 1.045, 100.0)],
)
def test_screening_finds_every_violation_of_the_exact_n1(
    case: str, vm_min: float, vm_max: float, loading: float
) -> None:
    net = load_case(case)
    net.bus["min_vm_pu"] = vm_min
    net.bus["max_vm_pu"] = vm_max
    net.line["max_loading_percent"] = loading
    net.trafo["max_loading_percent"] = 2.0  # case118's trafos (9900 MVA) load a few %; case30 has none
    exact = run_contingency(net)
    fast = run_contingency(net, screening=True)
    truth, found = _keys(exact), _keys(fast)
    assert len(truth) > 0
    assert case == "case30" or any(element == "trafo" for _, element, _ in truth)
    recall = len(truth & found) / len(truth)
    precision = len(truth & found) / len(found)
    assert (recall, precision) == (1.0, 1.0)
    assert not exact.screened.any()
    screened = fast.screened
    assert screened.any()  # screening did stop some outages early
    np.testing.assert_array_equal(fast.converged, exact.converged)
    # a screened outage's voltages are within the bound it was screened with
    diff = np.nanmax(np.abs(fast.vm_pu[screened] - exact.vm_pu[screened]), axis=1)
    assert (diff <= fast.error_bound_vm_pu[screened]).all()
    assert (fast.error_bound_vm_pu[~screened] == 0).all()
    # outages not screened are exact
    rest = ~screened & exact.converged
    if rest.any():
        assert np.nanmax(np.abs(fast.vm_pu[rest] - exact.vm_pu[rest])) < 1e-9
