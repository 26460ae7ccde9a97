"""The energy study's sweep on this machine: 2 world sizes × 3 global batches × 2 local batches.

Every point is a real data-parallel training of the digits MLP (local gloo processes); the
table records time, device-hours (CPU core-hours here), throughput, accuracy and energy where
the machine has readable sensors (otherwise "unavailable" with the reason). Prints the table and
the fit (when energy was measured) and writes ``energy_sweep.jsonl``, ``energy_report.json``
and ``energy_sweep.png`` to ``--out``. Resumable: rerun with the same ``--out`` to finish.

    python packages/hai-scale/benchmarks/bench_energy_sweep.py --out build/bench
"""

from __future__ import annotations

import argparse
from pathlib import Path

from hai.scale.energy import SweepSpec, report, report_figures, run_sweep
from hai.shared import atomic_path, write_json


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("build/bench"))
    parser.add_argument("--workload", default="digits")
    parser.add_argument("--epochs", type=float, default=10.0)
    args = parser.parse_args()
    spec = SweepSpec(
        workload=args.workload,
        world_sizes=(1, 2),
        global_batches=(64, 128, 256),
        local_batches=(16, 32),
        epochs=args.epochs,
        lr=2e-3,
    )
    table = run_sweep(spec, args.out / "energy_sweep.jsonl")
    out = report(table.rows)
    write_json(args.out / "energy_report.json", out)
    try:
        fig = report_figures(table.rows)
        with atomic_path(args.out / "energy_sweep.png") as tmp:
            fig.savefig(tmp, format="png", dpi=110)
    except ImportError:
        pass
    print(f"machine: {out['machine']['cpu']}, {out['machine']['cores']} cores; device = {out['device_kind']}")
    metric = table.rows[0]["metric_name"]
    kind = out["device_kind"]
    print(f"| point | updates | wall [s] | {kind}-hours | samples/dev-h | {metric} | energy [J] |")
    print("|---|---|---|---|---|---|---|")
    for p, row in zip(out["points"], table.rows, strict=True):
        energy = "unavailable" if p["energy_j"] is None else f"{p['energy_j']:.1f}"
        print(
            f"| {p['name']} | {row['updates']} | {p['wall_s']:.2f} | {p['device_hours']:.2e} | "
            f"{p['samples_per_device_hour']:.3g} | {p[metric]:.4f} | {energy} |"
        )
    if out["fit"] is None:
        print("energy unavailable: " + "; ".join(out["energy_unavailable"]))
    else:
        fit = out["fit"]
        print(f"fit: E = {fit['slope']:.4g} J/device-h × h + {fit['intercept']:.4g} J, R² = {fit['r2']:.4f}")


if __name__ == "__main__":
    main()
