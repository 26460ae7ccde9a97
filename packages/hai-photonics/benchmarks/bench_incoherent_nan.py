"""Issue 12.2: the random incoherent sweep: NaN/inf count, energy balance, agreement with tmm.

Workload: ``--stacks`` (default 5,296) random stacks, each run in s and p polarisation, so
10,592 cases by default (the issue's count). Each stack has a lossless incidence medium
(n0 in [1, 2.6]), 1 to 8 inner layers (dielectrics with k = 0 or up to 0.5, one in five a metal
with k in [1, 8]), an exit medium that absorbs in a third of the stacks, a random non-empty set
of thick incoherent inner layers (1 µm to 1 mm; the others 0 to 300 nm), one angle drawn from
0 to 89°, and ``--wavelengths`` (default 4) wavelengths drawn from 300 to 2000 nm. Many angles lie
beyond the critical angle of some layer (the light is evanescent there), which is what issue 12.2
was about.

Reported, for ``hai.photonics.tmm.incoherent(..., layer_absorption=True)``:

* the number of cases with a NaN or infinite R, T, A or per-layer absorption (target 0);
* max |R + T + Σ A_layer - 1| and the most negative / largest R, T and A_layer (energy balance),
  and the number of cases with a value outside [0, 1] by more than 1e-9 (possible, as in
  ``tmm.inc_tmm``, for a nearly lossless incoherent layer just beyond its critical angle and
  thin enough for the evanescent light to tunnel, which no power treatment describes);
* max |ΔR|, |ΔT|, |ΔA_layer| against ``tmm.inc_tmm`` / ``tmm.inc_absorp_in_each_layer``, where
  tmm is installed. For a stack with a lossless incoherent layer in which the light is
  evanescent, no power reaches anything below that layer; ``tmm.inc_tmm`` returns unphysical
  values there (R = -2.69 on the issue's repro), so the reference for such stacks is
  ``tmm.inc_tmm`` on the stack cut at that layer (the layer as exit medium), with T = 0 and no
  absorption below. The number of stacks where the uncut ``tmm.inc_tmm`` gives non-physical
  numbers (R or T outside [0, 1], NaN, or an exception) is reported too.

Prints a summary and writes ``bench_incoherent_nan.json`` to ``--out``.

    OMP_NUM_THREADS=1 python packages/hai-photonics/benchmarks/bench_incoherent_nan.py --out build/bench
"""

from __future__ import annotations

import argparse
import math
import platform
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hai.photonics.tmm import incoherent
from hai.shared import write_json

try:
    import tmm as tmm_ref
except ImportError:  # the bench and test extras install it
    tmm_ref = None


def random_case(rng: np.random.Generator, n_wl: int) -> dict[str, Any]:
    inner = int(rng.integers(1, 9))
    wl = np.sort(rng.uniform(300.0, 2000.0, n_wl))
    n = np.empty((inner + 2, n_wl), complex)
    n[0] = rng.uniform(1.0, 2.6)
    for i in range(1, inner + 1):
        if rng.random() < 0.2:  # metal
            n[i] = rng.uniform(0.05, 3.0, n_wl) + 1j * rng.uniform(1.0, 8.0, n_wl)
        else:
            k = rng.uniform(0.0, 0.5, n_wl) if rng.random() < 0.5 else 0.0
            n[i] = rng.uniform(1.2, 4.0, n_wl) + 1j * k
    n[-1] = rng.uniform(1.0, 3.5) + 1j * (rng.uniform(0.0, 2.0) if rng.random() < 1 / 3 else 0.0)
    chosen = rng.random(inner) < 0.4
    if not chosen.any():
        chosen[rng.integers(inner)] = True
    inc = [i + 1 for i in np.flatnonzero(chosen)]
    d = np.zeros(inner + 2)
    for i in range(1, inner + 1):
        d[i] = 10 ** rng.uniform(3, 6) if i in inc else rng.uniform(0.0, 300.0)
    angle = float(rng.uniform(0.0, 89.0))
    return {"n": n, "d": d, "inc": inc, "angle": angle, "wl": wl}


def evanescent_cut(n: np.ndarray, inc: list[int], angle: float) -> int | None:
    """The first lossless incoherent layer where the light is evanescent (at any wavelength), or None."""
    beta = n[0].real * math.sin(math.radians(angle))
    for i in inc:
        if bool(((n[i].imag == 0) & (n[i].real < beta)).any()):
            return i
    return None


def tmm_reference(case: dict[str, Any], pol: str, wi: int) -> tuple[float, float, np.ndarray] | None:
    """R, T, per-layer absorption of one wavelength from tmm.inc_tmm (cut at an evanescent layer)."""
    assert tmm_ref is not None
    n, d, inc, angle = case["n"][:, wi], case["d"], case["inc"], case["angle"]
    beta = n[0].real * math.sin(math.radians(angle))
    cut = next((i for i in inc if n[i].imag == 0 and n[i].real < beta), None)
    last = len(n) - 1 if cut is None else cut
    n_c = list(n[: last + 1])
    d_c = [np.inf, *d[1:last], np.inf]
    c_list = ["i"] + ["i" if i in inc else "c" for i in range(1, last)] + ["i"]
    try:
        ref = tmm_ref.inc_tmm(pol, n_c, d_c, c_list, math.radians(angle), case["wl"][wi])
        per_layer = np.zeros(len(n))
        per_layer[:last] = np.asarray(tmm_ref.inc_absorp_in_each_layer(ref))[:last]
    except (AssertionError, ValueError, ZeroDivisionError, FloatingPointError):
        return None
    per_layer[0] = 0.0
    T = ref["T"] if cut is None else 0.0
    return float(ref["R"]), float(T), per_layer


def tmm_uncut_physical(case: dict[str, Any], pol: str, wi: int) -> bool:
    assert tmm_ref is not None
    n, d, inc = case["n"][:, wi], case["d"], case["inc"]
    c_list = ["i"] + ["i" if i in inc else "c" for i in range(1, len(n) - 1)] + ["i"]
    try:
        ref = tmm_ref.inc_tmm(
            pol, list(n), [np.inf, *d[1:-1], np.inf], c_list, math.radians(case["angle"]), case["wl"][wi]
        )
    except (AssertionError, ValueError, ZeroDivisionError, FloatingPointError):
        return False
    R, T = ref["R"], ref["T"]
    return bool(np.isfinite(R) and np.isfinite(T) and -1e-9 <= R <= 1 + 1e-9 and -1e-9 <= T <= 1 + 1e-9)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="build/bench", help="folder for bench_incoherent_nan.json")
    parser.add_argument("--stacks", type=int, default=5296, help="random stacks (each run in s and p)")
    parser.add_argument("--wavelengths", type=int, default=4, help="wavelengths per stack")
    parser.add_argument("--seed", type=int, default=12)
    parser.add_argument("--no-tmm", action="store_true", help="skip the comparison with tmm.inc_tmm")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore")  # tmm warns about its own evanescent-layer arithmetic
    rng = np.random.default_rng(args.seed)
    use_tmm = tmm_ref is not None and not args.no_tmm

    cases = nonfinite = cut_cases = tmm_unphysical = tmm_failed = outside = 0
    worst_balance = 0.0
    lowest = {"R": 1.0, "T": 1.0, "A_layer": 1.0}
    highest = {"R": 0.0, "T": 0.0, "A_layer": 0.0}
    worst = {"R": 0.0, "T": 0.0, "A_layer": 0.0}
    start = time.perf_counter()
    hai_time = 0.0
    for _ in range(args.stacks):
        case = random_case(rng, args.wavelengths)
        cut = evanescent_cut(case["n"], case["inc"], case["angle"])
        for pol in ("s", "p"):
            cases += 1
            cut_cases += cut is not None
            t0 = time.perf_counter()
            res = incoherent(
                torch.from_numpy(case["n"]),
                torch.from_numpy(case["d"]),
                torch.from_numpy(case["wl"]),
                incoherent_layers=case["inc"],
                angle_deg=case["angle"],
                pol=pol,
                layer_absorption=True,
            )
            hai_time += time.perf_counter() - t0
            assert res.layer_absorption is not None
            R, T, A_l = res.R.numpy(), res.T.numpy(), res.layer_absorption.numpy()
            if not (np.isfinite(R).all() and np.isfinite(T).all() and np.isfinite(A_l).all()):
                nonfinite += 1
                continue
            tol = 1e-9
            outside += bool((1 + tol < R).any() or (-tol > T).any() or (A_l < -tol).any() or (-tol > R).any())
            worst_balance = max(worst_balance, float(np.abs(R + T + A_l.sum(0) - 1).max()))
            for key, val in (("R", R), ("T", T), ("A_layer", A_l)):
                lowest[key] = min(lowest[key], float(val.min()))
                highest[key] = max(highest[key], float(val.max()))
            if not use_tmm:
                continue
            for wi in range(args.wavelengths):
                if not tmm_uncut_physical(case, pol, wi):
                    tmm_unphysical += 1
                ref = tmm_reference(case, pol, wi)
                if ref is None:
                    tmm_failed += 1
                    continue
                worst["R"] = max(worst["R"], abs(ref[0] - float(R[wi])))
                worst["T"] = max(worst["T"], abs(ref[1] - float(T[wi])))
                worst["A_layer"] = max(worst["A_layer"], float(np.abs(ref[2][1:-1] - A_l[1:-1, wi]).max()))
    elapsed = time.perf_counter() - start

    result = {
        "workload": {
            "stacks": args.stacks,
            "cases": cases,
            "wavelengths_per_case": args.wavelengths,
            "seed": args.seed,
            "cases_with_an_evanescent_lossless_incoherent_layer": cut_cases,
        },
        "nonfinite_cases": nonfinite,
        "cases_with_R_T_or_A_layer_outside_0_1_by_more_than_1e-9": outside,
        "max_abs_R_plus_T_plus_sum_A_minus_1": worst_balance,
        "min": lowest,
        "max": highest,
        "tmm": None
        if not use_tmm
        else {
            "max_abs_diff": worst,
            "wavelength_cases_where_uncut_inc_tmm_is_unphysical": tmm_unphysical,
            "wavelength_cases_where_reference_failed": tmm_failed,
        },
        "hai_seconds": hai_time,
        "total_seconds": elapsed,
        "machine": {
            "python": sys.version.split()[0],
            "torch": torch.__version__,
            "platform": platform.platform(),
        },
    }
    out = Path(args.out)
    write_json(out / "bench_incoherent_nan.json", result)
    print(f"cases: {cases} ({args.stacks} stacks x s,p; {args.wavelengths} wavelengths each)")
    print(f"cases with a lossless incoherent layer where the light is evanescent: {cut_cases}")
    print(f"NaN/inf cases: {nonfinite}")
    print(f"cases with R, T or an A_layer outside [0, 1] by more than 1e-9: {outside}")
    print(f"max |R + T + sum(A_layer) - 1|: {worst_balance:.3g}")
    print("min R, T, A_layer: " + ", ".join(f"{lowest[k]:.3g}" for k in lowest))
    print("max R, T, A_layer: " + ", ".join(f"{highest[k]:.3g}" for k in highest))
    if use_tmm:
        print("max |diff| to tmm.inc_tmm: " + ", ".join(f"{k} {v:.3g}" for k, v in worst.items()))
        print(f"wavelength cases where the uncut tmm.inc_tmm is unphysical: {tmm_unphysical}")
        print(f"wavelength cases where the tmm reference failed: {tmm_failed}")
    else:
        print("tmm not installed (or --no-tmm): no comparison")
    print(f"hai time {hai_time:.1f} s, total {elapsed:.1f} s")
    print(f"wrote {out / 'bench_incoherent_nan.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
