"""hai-grid's part of ``hai demo``: N-1 of case118, hai against pandapower, and AutoPQ.

Every in-service line and transformer of pandapower's case118 is taken out in turn (186
outages) and all outages are solved as one batch by ``solve_batch`` (Newton-Raphson to
1e-8 MVA). pandapower's ``runpp`` (``tolerance_mva`` 1e-10) solves every fourth outage one by
one as the reference: the report gives the largest voltage deviation, the islanded outages
found by both, and the time per outage of each. About 10–20 s on 2 CPU cores. Then AutoPQ's
part (:mod:`hai.grid.autopq.demo`: quantile forecasts of a synthetic load and PV series, their
calibration against climatology, and the risk they mean for a small network), about a minute.
"""

from __future__ import annotations

import copy
import time
import warnings

import numpy as np

from hai.grid.batch import solve_batch
from hai.grid.cases import load_case
from hai.grid.plots import plot_contingency_voltages
from hai.grid.powerflow import runpp
from hai.shared import DemoContext, Figure, MissingPackageError, Section, Table, resolve_device

CASE = "case118"
REFERENCE_EVERY = 4


def run(context: DemoContext) -> Section:
    """Run the demo and return its report section."""
    import pandapower as pp  # type: ignore[import-untyped]
    from pandapower.auxiliary import NUMBA_INSTALLED  # type: ignore[import-untyped]

    device = resolve_device(context.device)
    net = load_case(CASE)
    runpp(net, device=device)
    base = net.res_bus.vm_pu.to_numpy().copy()
    outages = [("line", int(i)) for i in net.line.index[net.line.in_service]]
    outages += [("trafo", int(i)) for i in net.trafo.index[net.trafo.in_service]]
    start = time.perf_counter()
    result = solve_batch(net, outages=outages, device=device)
    hai_s = time.perf_counter() - start

    checked = list(range(0, len(outages), REFERENCE_EVERY))
    reference = np.full((len(checked), len(net.bus)), np.nan)
    # a pandapower user's N-1 loop: toggle in_service on one copy (no deep copy per outage, which
    # an earlier version timed and so overstated the speed-up); 1e-10 pu is hai's 1e-8 MVA here
    ref = copy.deepcopy(net)
    start = time.perf_counter()
    for row, b in enumerate(checked):
        element, index = outages[b]
        ref[element].loc[index, "in_service"] = False
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                # numba only where pandapower can import it: else it logs its install advice every call
                pp.runpp(ref, tolerance_mva=1e-10, numba=bool(NUMBA_INSTALLED))
            reference[row] = ref.res_bus.vm_pu.to_numpy()
        finally:
            ref[element].loc[index, "in_service"] = True
    pp_s = time.perf_counter() - start
    ours = result.vm_pu.numpy()[checked]
    same_nan = bool((np.isnan(ours) == np.isnan(reference)).all())
    deviation = float(np.nanmax(np.abs(ours - reference)))
    hai_ms = 1e3 * hai_s / len(outages)
    pp_ms = 1e3 * pp_s / len(checked)
    vm = result.vm_pu.numpy()
    figure = plot_contingency_voltages(
        vm[checked],
        reference=reference,
        base=base,
        title=f"{CASE} N-1: bus voltages over {len(checked)} outages (hai band, pandapower markers)",
    )
    worst = np.argsort(np.nanmin(vm, axis=1))[:5]
    rows: list[list[float | int | str | bool | None]] = [
        [f"{outages[b][0]} {outages[b][1]}", round(float(np.nanmin(vm[b])), 5), bool(result.islanded[b])]
        for b in worst
    ]
    section = Section(
        domain="grid",
        title="Differentiable power flow: N-1 of case118",
        summary=(
            f"All {len(outages)} line and transformer outages of pandapower's {CASE} solved as one batch "
            f"by hai.grid (Newton-Raphson on the power mismatch, 1e-8 MVA), checked against "
            f"pandapower.runpp on every {REFERENCE_EVERY}th outage."
        ),
        metrics={
            "outages": len(outages),
            "converged": int(result.converged.sum()),
            "islanded_outages": int(result.islanded.sum()),
            "checked_against_pandapower": len(checked),
            "max_vm_deviation_pu": deviation,
            "isolated_buses_agree": same_nan,
            "hai_ms_per_outage": round(hai_ms, 3),
            "pandapower_ms_per_outage": round(pp_ms, 3),
            "speedup": round(pp_ms / hai_ms, 2),
            "device": str(device),
        },
        figures=[
            Figure.from_matplotlib(figure, "n1-voltages", f"{CASE}: per-bus voltage range over outages")
        ],
        tables=[Table("Lowest voltages after an outage", ["outage", "min vm_pu", "islanded"], rows)],
    )
    return _with_autopq(section, context)


def _with_autopq(section: Section, context: DemoContext) -> Section:
    """Append AutoPQ's part (hai.grid.autopq.demo) to the power-flow section: one grid section."""
    try:
        from hai.grid.autopq.demo import run as autopq_run

        autopq = autopq_run(context)
    except MissingPackageError as exc:  # the demo extra installs FrEIA and optuna
        section.summary += f" (AutoPQ's part is left out: {exc.message}; pip install 'hai-grid[demo]'.)"
        return section
    section.title += ", and AutoPQ quantile forecasts with the risk they mean"
    section.summary += " " + autopq.summary
    section.metrics.update({f"autopq_{k}": v for k, v in autopq.metrics.items()})
    section.figures.extend(autopq.figures)
    section.tables.extend(autopq.tables)
    return section
