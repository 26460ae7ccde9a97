"""Exact-mode parity of ``hai.grid.runpp`` with ``pandapower.runpp`` on every pandapower case.

For each ``caseN`` network that pandapower ships (case4gs … case9241pegase), solves it with
``pandapower.runpp(net, tolerance_mva=1e-10)`` and with ``hai.grid.runpp`` on a copy, and
reports the largest differences in vm (pu) and va (degrees) against the targets 1e-6 pu and
1e-4 degrees. A case that pandapower itself cannot solve is reported as such, not counted.
Writes JSON with ``--out``.

The same convergence criterion for both: pandapower's Newton compares the infinity norm of the
mismatch *in per unit* with ``tolerance_mva`` (pypower's ``newtonpf``), and ``hai.grid.runpp``
gives ``tolerance_mva`` the same meaning, so both get ``tolerance_mva=1e-10``.

    python packages/hai-grid/examples/parity_all_cases.py [--cases case9 case118] [--out parity.json]
"""

from __future__ import annotations

import argparse
import copy
import time
import warnings

import numpy as np
import pandapower as pp  # type: ignore[import-untyped]
import pandapower.networks as pn  # type: ignore[import-untyped]

import hai.grid
from hai.grid.cases import load_case
from hai.shared import write_json


def all_cases() -> list[str]:
    """The names of pandapower's ``caseN…`` factories, smallest bus count first (by name's digits)."""
    names = [n for n in dir(pn) if n.startswith("case") and n[4:5].isdigit() and callable(getattr(pn, n))]
    return sorted(names, key=lambda n: int("".join(ch for ch in n[4:] if ch.isdigit()) or 0))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="+", default=None, help="default: every caseN of pandapower")
    parser.add_argument("--out", default=None, help="write the rows as JSON here")
    args = parser.parse_args()
    numba = bool(pp.auxiliary.NUMBA_INSTALLED)
    rows = []
    print(f"{'case':18} {'buses':>6} {'max |dvm| pu':>13} {'max |dva| deg':>14} {'hai s':>7}  verdict")
    for name in args.cases or all_cases():
        net = load_case(name)
        reference = copy.deepcopy(net)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                pp.runpp(reference, tolerance_mva=1e-10, numba=numba)
            except Exception as exc:  # pandapower's own failure: nothing to compare with
                print(f"{name:18} {len(net.bus):6d} {'':>13} {'':>14} {'':>7}  pandapower fails: {exc}")
                rows.append({"case": name, "buses": len(net.bus), "pandapower_error": str(exc)})
                continue
        start = time.perf_counter()
        hai.grid.runpp(net, tolerance_mva=1e-10, device="cpu")
        seconds = time.perf_counter() - start
        dvm = float(np.nanmax(np.abs(net.res_bus.vm_pu.to_numpy() - reference.res_bus.vm_pu.to_numpy())))
        va, va_ref = net.res_bus.va_degree.to_numpy(), reference.res_bus.va_degree.to_numpy()
        dva = float(np.nanmax(np.abs(va - va_ref)))
        ok = dvm <= 1e-6 and dva <= 1e-4
        print(f"{name:18} {len(net.bus):6d} {dvm:13.2e} {dva:14.2e} {seconds:7.2f}  {'ok' if ok else 'FAIL'}")
        rows.append({"case": name, "buses": len(net.bus), "max_dvm_pu": dvm, "max_dva_deg": dva, "ok": ok})
    checked = [r for r in rows if "ok" in r]
    print(f"{sum(r['ok'] for r in checked)} of {len(checked)} cases within 1e-6 pu and 1e-4 degrees")
    if args.out:
        write_json(args.out, rows)


if __name__ == "__main__":
    main()
