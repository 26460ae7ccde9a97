"""Simulator throughput (decays per second): hai's simulator against its previous version.

Runs ``hai.pet.simulate`` and the previous implementation (the module as it was before the
speed-up, at commit 9830052, read from this checkout's git history) side by side on the same
set-up: each preset's default source (a water-filled cylinder of activity filling the "auto"
phantom) at ``--activity-mbq`` for ``--seconds``, interleaved, best of ``--repeats``. Reports
decays/s of both and their ratio, plus the physics both produce (hits and singles per decay,
phantom-scatter fraction of the hits, mean energy of scattered hits, the trues fraction among
sorted coincidences), which must agree within statistics. ``--no-before`` times hai alone
(e.g. at a clinical activity, where the previous version takes minutes, or outside a git
checkout). Writes JSON.

    nice python packages/hai-pet/benchmarks/bench_simulate.py [--activity-mbq 1] [--seconds 1]
    nice python packages/hai-pet/benchmarks/bench_simulate.py --presets clinical --activity-mbq 20 --no-before
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from hai.pet import CylinderSource, get_scanner, pair_metrics, simulate, sort_coincidences
from hai.shared import write_json

BEFORE_COMMIT = "9830052"  # the last commit with the previous simulator


def load_before() -> Any:
    """The previous simulator as a module, from git history (the anchor of this benchmark)."""
    root = Path(__file__).resolve().parents[3]
    source = subprocess.run(
        ["git", "show", f"{BEFORE_COMMIT}:packages/hai-pet/src/hai/pet/simulate.py"],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    path = Path(tempfile.mkdtemp(prefix="hai-pet-before-")) / "simulate_before.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("simulate_before", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["simulate_before"] = module
    spec.loader.exec_module(module)
    return module


def physics(sim: Any) -> dict[str, float]:
    """What the simulation produced per decay (to check that both versions agree)."""
    h, s, n = sim.hits, sim.singles, sim.n_decays
    scattered = h["nPhantomCompton"] == 1
    result = sort_coincidences(s, 4.0, policy="takeWinnerOfGoods", energy_window_kev=(350, 650))
    m = pair_metrics(result.coincidences, s)
    return {
        "hits_per_decay": len(h) / n,
        "singles_per_decay": len(s) / n,
        "scatter_fraction": float(scattered.mean()),
        "scattered_energy_kev": float(h["edep"][scattered].mean() * 1000),
        "coincidence_precision": m.precision,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=["clinical", "safir"])
    parser.add_argument("--activity-mbq", type=float, default=1.0)
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-before", action="store_true", help="time hai only")
    parser.add_argument("--out", default="bench_simulate.json")
    args = parser.parse_args()

    before = None if args.no_before else load_before()
    rows = []
    print(f"{'preset':9} {'MBq':>6} {'s':>5} {'decays':>9} {'before/s':>10} {'hai/s':>10} {'ratio':>6}")
    for preset in args.presets:
        scanner = get_scanner(preset)
        radius = min(100.0, 0.4 * scanner.radius_mm)
        sources = [
            CylinderSource(args.activity_mbq * 1e6, radius_mm=radius, length_mm=scanner.axial_length_mm)
        ]
        runs: dict[str, list[float]] = {"before": [], "hai": []}
        sims: dict[str, Any] = {}
        for _ in range(args.repeats):
            impls = (
                [("hai", simulate)] if before is None else [("before", before.simulate), ("hai", simulate)]
            )
            for name, fn in impls:
                t0 = time.perf_counter()
                sims[name] = fn(scanner, sources, seconds=args.seconds, seed=0)
                runs[name].append(time.perf_counter() - t0)
        row: dict[str, Any] = {"preset": preset, "activity_mbq": args.activity_mbq, "seconds": args.seconds}
        for name, sim in sims.items():
            row[f"{name}_decays"] = sim.n_decays
            row[f"{name}_s"] = min(runs[name])
            row[f"{name}_decays_per_s"] = sim.n_decays / min(runs[name])
            row[f"{name}_physics"] = physics(sim)
        ratio = row["hai_decays_per_s"] / row["before_decays_per_s"] if "before_s" in row else float("nan")
        row["ratio"] = ratio
        rows.append(row)
        before_rate = f"{row['before_decays_per_s']:10.3g}" if "before_s" in row else f"{'-':>10}"
        print(
            f"{preset:9} {args.activity_mbq:6g} {args.seconds:5g} {row['hai_decays']:9d} {before_rate}"
            f" {row['hai_decays_per_s']:10.3g} {ratio:6.2f}   (hai: {row['hai_s']:.2f} s)"
        )
        for name in sims:
            phys = row[f"{name}_physics"]
            print(f"    {name:7} " + "  ".join(f"{k} {v:.4g}" for k, v in phys.items()))
    write_json(args.out, {"rows": rows, "numpy": np.__version__})


if __name__ == "__main__":
    main()
