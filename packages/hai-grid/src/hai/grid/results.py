"""Results into ``net.res_*``: pandapower's own extraction from the solved voltages.

Not hand-written on purpose: once the voltages are solved, bus powers, branch flows and
loadings, slack and generator outputs are what pandapower computes from them. The solved
voltages are written into pandapower's internal case exactly where its Newton-Raphson leaves
them, and pandapower's ``pfsoln`` and ``_ppci_to_net`` fill ``net.res_bus``, ``res_line``,
``res_trafo``, ``res_trafo3w``, ``res_ext_grid``, ``res_gen``, ``res_load``, ``res_sgen`` … with
pandapower's columns and units (isolated buses NaN, as in pandapower).

>>> from hai.grid.cases import load_case
>>> from hai.grid.network import compile_network
>>> net = load_case("case9")
>>> compiled = compile_network(net)
>>> import numpy as np
>>> write_results(compiled, compiled.v0.numpy(), iterations=0)  # the flat start as a "solution"
>>> float(net.res_bus.vm_pu.iloc[0])
1.0
"""

from __future__ import annotations

import time

import numpy as np

from hai.grid.network import CompiledNetwork


def write_results(compiled: CompiledNetwork, v: np.ndarray, *, iterations: int) -> None:
    """Fill ``compiled.net.res_*`` from internal-order complex voltages ``v`` (per unit)."""
    from pandapower.pf.ppci_variables import _store_results_from_pf_in_ppci  # type: ignore[import-untyped]
    from pandapower.pf.run_newton_raphson_pf import ppci_to_pfsoln  # type: ignore[import-untyped]
    from pandapower.powerflow import _ppci_to_net  # type: ignore[import-untyped]

    start = time.perf_counter()
    net = compiled.net
    ppci = compiled.ppci
    ppci["internal"].update(
        {
            "bus": ppci["bus"],
            "gen": ppci["gen"],
            "branch": ppci["branch"],
            "svc": ppci["svc"],
            "tcsc": ppci["tcsc"],
            "ssc": ppci["ssc"],
            "vsc": ppci["vsc"],
            "baseMVA": compiled.base_mva,
            "V": np.asarray(v, dtype=np.complex128),
            "pv": compiled.pv.cpu().numpy(),
            "pq": compiled.pq.cpu().numpy(),
            "ref": compiled.ref.cpu().numpy(),
            "Sbus": compiled.sbus.cpu().numpy(),
            "Ybus": compiled.ybus_scipy,
            "Yf": compiled.yf_scipy,
            "Yt": compiled.yt_scipy,
            "J": None,
            "Vm_it": None,
            "Va_it": None,
            "r_theta_kelvin_per_mw": None,
            "T": None,
        }
    )
    bus, gen, branch = ppci_to_pfsoln(ppci, net["_options"])
    ppci = _store_results_from_pf_in_ppci(
        ppci, bus, gen, branch, True, iterations, time.perf_counter() - start
    )
    _ppci_to_net(ppci, net)
