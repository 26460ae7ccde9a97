"""The energy study's part of hai-scale's demo: a tiny sweep on CPU (1 and 2 processes, two
global batches), with time and CPU core-hours, and energy where the machine has sensors."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from hai.scale.energy.analysis import report, report_figures
from hai.scale.energy.spec import SweepSpec
from hai.scale.energy.sweep import run_sweep
from hai.shared import Figure, Table


def energy_part(
    seed: int = 0, *, with_figure: bool = True
) -> tuple[dict[str, Any], list[Figure], Table, str]:
    """Run the tiny sweep; return metrics, figures, a table and a summary sentence."""
    spec = SweepSpec(
        workload="digits", world_sizes=(1, 2), global_batches=(32, 64), local_batches=(16,), epochs=1.0,
        lr=2e-3, seed=seed, options={"hidden": [64]},
    )  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="hai-energy-demo-") as folder:
        rows = run_sweep(spec, Path(folder) / "sweep.jsonl", timeout_s=300).rows
    out = report(rows)
    kind = out["device_kind"]
    table = Table(
        caption=f"Energy sweep (digits MLP, 1 epoch): time, {kind}-hours and energy per point",
        columns=["point", "wall [s]", f"{kind}-hours", f"samples per {kind}-hour", "accuracy", "energy [J]"],
        rows=[
            [p["name"], round(p["wall_s"], 3), float(f"{p['device_hours']:.3e}"),
             float(f"{p['samples_per_device_hour']:.3g}"), round(p["accuracy"], 4),
             None if p["energy_j"] is None else round(p["energy_j"], 2)]
            for p in out["points"]
        ],
    )  # fmt: skip
    metrics: dict[str, Any] = {f"energy_{p['name']}_wall_s": p["wall_s"] for p in out["points"]}
    metrics["energy_measured"] = out["fit"] is not None or any(
        p["energy_j"] is not None for p in out["points"]
    )
    if metrics["energy_measured"]:
        summary = "Energy was measured for every point of the tiny sweep."
    else:
        summary = "Energy is unavailable on this machine (" + "; ".join(out["energy_unavailable"]) + ")."
    figures = []
    if with_figure:
        figures.append(
            Figure.from_matplotlib(report_figures(rows), "energy_sweep", "time or energy vs device-hours")
        )
    return metrics, figures, table, summary
