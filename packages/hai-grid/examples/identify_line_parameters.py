"""Recover perturbed line r/x of a pandapower case from a full set of measurements.

The "true" net is solved by ``pandapower.runpp``; its bus voltages (vm, va) and line flows
(p/q at both ends) are the measurements. A copy whose r/x of five lines are off by ±20–50 %
is the model to correct; ``hai.grid.identify_line_parameters`` recovers them by L-BFGS on the
least-squares misfit, with gradients by implicit differentiation through the power flow.

    python packages/hai-grid/examples/identify_line_parameters.py [--case case118] [--seed 0]
"""

from __future__ import annotations

import argparse
import copy
import time
import warnings

import numpy as np
import pandapower as pp

import hai.grid


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--case", default="case30")
    parser.add_argument("--lines", type=int, default=5, help="number of lines to perturb")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    truth = hai.grid.load_case(args.case)
    pp.runpp(truth, tolerance_mva=1e-10)
    measured = {
        "vm_pu": truth.res_bus.vm_pu,
        "va_degree": truth.res_bus.va_degree,
        "p_from_mw": truth.res_line.p_from_mw,
        "q_from_mvar": truth.res_line.q_from_mvar,
        "p_to_mw": truth.res_line.p_to_mw,
        "q_to_mvar": truth.res_line.q_to_mvar,
    }
    rng = np.random.default_rng(args.seed)
    candidates = truth.line.index[(truth.line.r_ohm_per_km > 0) & truth.line.in_service]
    lines = sorted(int(i) for i in rng.choice(candidates, size=args.lines, replace=False))
    guess = copy.deepcopy(truth)
    for line in lines:
        for column in ("r_ohm_per_km", "x_ohm_per_km"):
            guess.line.loc[line, column] *= 1 + rng.choice([-1, 1]) * rng.uniform(0.2, 0.5)
    start = time.perf_counter()
    result = hai.grid.identify_line_parameters(guess, measured, lines)
    seconds = time.perf_counter() - start
    print(
        f"{args.case}: {len(lines)} lines, {result.iterations} L-BFGS iterations, {seconds:.1f} s, "
        f"misfit {result.loss:.2e}, converged {result.converged}"
    )
    print(
        f"{'line':>5} {'r start':>9} {'r found':>9} {'r true':>9} {'rel err':>9}"
        f" {'x start':>9} {'x found':>9} {'x true':>9} {'rel err':>9}"
    )
    for k, line in enumerate(lines):
        row = [f"{line:>5}"]
        for column, found in (
            ("r_ohm_per_km", result.r_ohm_per_km[k]),
            ("x_ohm_per_km", result.x_ohm_per_km[k]),
        ):
            true = float(truth.line[column].at[line])
            row += [
                f"{guess.line[column].at[line]:9.4f}",
                f"{found:9.4f}",
                f"{true:9.4f}",
                f"{found / true - 1:9.1e}",
            ]
        print(" ".join(row))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
