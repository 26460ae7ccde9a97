"""Time to report non-convergence: mv_oberrhein with loads ×10 (no solution).

``hai.grid.runpp`` against ``pandapower.runpp(numba=False)`` in the same run, medians of
``--repeats`` runs on fresh copies after a warm-up; prints each time and the error message.

    python packages/hai-grid/benchmarks/bench_nonconvergence.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import copy
import time
import warnings
from collections.abc import Callable
from typing import Any


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    import pandapower as pp
    import pandapower.networks as pn

    import hai.grid

    net = pn.mv_oberrhein()
    net.load["p_mw"] *= 10
    net.load["q_mvar"] *= 10

    def timed(run: Callable[[Any], Any]) -> tuple[float, str]:
        times, message = [], ""
        for _ in range(args.repeats):
            work = copy.deepcopy(net)
            start = time.perf_counter()
            try:
                run(work)
                message = "converged"
            except Exception as exc:  # both report non-convergence by raising
                message = f"{type(exc).__name__}: {str(exc)[:140]}"
            times.append(time.perf_counter() - start)
        return sorted(times)[len(times) // 2], message

    pp.runpp(pn.case9(), numba=False)  # warm-up
    hai.grid.runpp(pn.case9())
    for name, run in (
        ("pandapower.runpp(numba=False)", lambda n: pp.runpp(n, numba=False)),
        ("hai.grid.runpp", lambda n: hai.grid.runpp(n, device="cpu")),
    ):
        seconds, message = timed(run)
        print(f"{name:<32} {seconds:.3f} s  {message}")


if __name__ == "__main__":
    main()
