"""Train the small PETNet shipped inside hai-pet (the default model of ``hai pet detect``).

The recipe, on one CPU thread (what the shipped file was trained with is recorded in the JSON
next to it, ``src/hai/pet/petnet-clinical.json``: acquisitions, seeds, parameters, epochs,
wall time, and a held-out check)::

    OMP_NUM_THREADS=1 python packages/hai-pet/benchmarks/train_shipped_model.py

Simulates several acquisitions of the full ``clinical`` preset (4 rings × 240 crystals, 24
sectors) with ``hai.pet.simulate`` — different activities, source shapes and phantoms, one seed
each — encodes each into spike trains (32 steps of 0.5 ns), and trains one geometry-local PETNet
(``local=True``: 3 → 8 → 1 LIF neurons shared by every crystal, facing fan ±20 crystals) on all
of them together (``PETNet.fit_encodings``: no dense [samples, T, C] tensor). Then scores it on
independent acquisitions (other seeds) next to the sorter (takeWinnerOfGoods, minimum sector
difference 10, the same facing-fan cut) and writes the
checkpoint (safetensors + JSON metadata: the spike encoding, the chaining window and the spike
tolerance that ``hai pet detect`` uses) and the recipe JSON.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hai.pet import (
    CylinderSource,
    LineSource,
    PETNet,
    PointSource,
    WaterCylinder,
    coincidence_tree,
    encode_spikes,
    get_scanner,
    pair_metrics,
    shipped_model_path,
    simulate,
    sort_coincidences,
)
from hai.pet.simulate import Source
from hai.shared import write_json

PRESET = "clinical"
#: The chaining window is the one the fair benchmark (bench_petnet_vs_sorter.py) chose on its
#: training data for PETNet and for every sorter policy: 1 ns.
STEPS, BIN_NS, WINDOW_NS, TOLERANCE_STEPS, FAN = 32, 0.5, 1.0, 2, 20
#: The training acquisitions: (source, activity in Bq, phantom radius in mm or None, seconds, seed).
TRAINING: tuple[tuple[str, float, float | None, float, int], ...] = (
    ("cylinder r100", 0.3e9, 100.0, 1.5e-4, 0),
    ("cylinder r100", 1.0e9, 100.0, 6e-5, 1),
    ("cylinder r100", 2.5e9, 100.0, 3e-5, 2),
    ("cylinder r50", 1.0e9, 100.0, 6e-5, 3),
    ("cylinder r150", 1.5e9, 150.0, 4e-5, 4),
    ("line", 1.0e9, None, 5e-5, 5),
    ("point off-centre", 0.5e9, 100.0, 1e-4, 6),
)
#: Held-out acquisitions for the recorded check (seeds not used in training).
HELD_OUT: tuple[tuple[str, float, float | None, float, int], ...] = (
    ("cylinder r100", 0.3e9, 100.0, 3e-4, 100),
    ("cylinder r100", 1.5e9, 100.0, 1e-4, 101),
    ("cylinder r50", 1.0e9, 100.0, 1e-4, 102),
)


def _source(kind: str, activity: float, length_mm: float) -> Source:
    half = length_mm / 2
    if kind.startswith("cylinder"):
        return CylinderSource(activity, radius_mm=float(kind.split("r")[-1]), length_mm=length_mm)
    if kind == "line":
        return LineSource(activity, start_mm=(0.0, 0.0, -half), end_mm=(0.0, 0.0, half))
    return PointSource(activity, position_mm=(60.0, -30.0, 0.0))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--patience", type=int, default=5)
    parser.add_argument("--lr", type=float, default=5e-3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every acquisition's length")
    parser.add_argument("--out", default=None, help="default: the package's shipped-model path")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    scanner = get_scanner(PRESET)
    opts: dict[str, Any] = {
        "n_crystals": scanner.n_crystals,
        "crystals_per_sector": scanner.crystals_per_sector,
        "crystals_per_ring": scanner.crystals_per_ring,
        "bin_ns": BIN_NS,
        "n_steps": STEPS,
    }

    def acquire(spec: tuple[str, float, float | None, float, int]) -> Any:
        kind, activity, phantom_r, seconds, seed = spec
        seconds *= args.scale
        phantom = None if phantom_r is None else WaterCylinder(phantom_r, 200.0)
        source = _source(kind, activity, scanner.axial_length_mm)
        return simulate(scanner, [source], seconds=seconds, seed=seed, phantom=phantom).singles

    encodings, acquisitions = [], []
    for spec in TRAINING:
        singles = acquire(spec)
        enc = encode_spikes(singles, **opts)
        used = enc.nonempty_samples
        encodings.append(enc)
        kind, activity, phantom_r, seconds, seed = spec
        acquisitions.append(
            {
                "source": kind,
                "activity_bq": activity,
                "phantom_radius_mm": phantom_r,
                "seconds": seconds * args.scale,
                "seed": seed,
                "singles": len(singles),
                "samples": len(used),
                "true_pairs": pair_metrics(coincidence_tree(singles, np.zeros((0, 2), int)), singles).n_true,
            }
        )
        print(f"train {acquisitions[-1]}", flush=True)
    params: dict[str, Any] = {
        "local": True,
        "hidden": 8,
        "beta": 0.5,
        "init_scale": 2.0,
        "crystals_per_ring": scanner.crystals_per_ring,
        "fan": FAN,
        "lr": args.lr,
        "epochs": args.epochs,
        "patience": args.patience,
        "batch_size": 128,
        "seed": 42,
        "device": "cpu",
    }
    t0 = time.perf_counter()
    # sparse: the same training as fit(x, y) on the stacked dense samples, without densifying
    net = PETNet(scanner.n_crystals, **params).fit_encodings(encodings)
    train_s = time.perf_counter() - t0
    print(f"trained {len(net.history_)} epochs in {train_s:.0f} s", flush=True)

    held_out = []
    for spec in HELD_OUT:
        singles = acquire(spec)
        kw: dict[str, Any] = {
            "window_ns": WINDOW_NS,
            "crystals_per_sector": scanner.crystals_per_sector,
            "crystals_per_ring": scanner.crystals_per_ring,
            "bin_ns": BIN_NS,
            "n_steps": STEPS,
            "tolerance_steps": TOLERANCE_STEPS,
        }
        pet = pair_metrics(coincidence_tree(singles, net.predict_pairs(singles, **kw)), singles)
        one_tiling = net.predict_pairs(singles, overlap=False, **kw)
        one = pair_metrics(coincidence_tree(singles, one_tiling), singles)
        sorter = {  # takeWinnerOfGoods at the facing-fan cut, at 1 ns (tuned) and at 4 ns
            window: pair_metrics(
                sort_coincidences(
                    singles,
                    window,
                    policy="takeWinnerOfGoods",
                    min_sector_difference=10,
                    sectors=scanner.sectors,
                ).coincidences,
                singles,
            ).f1
            for window in (1.0, 4.0)
        }
        kind, activity, phantom_r, seconds, seed = spec
        held_out.append(
            {
                "source": kind,
                "activity_bq": activity,
                "phantom_radius_mm": phantom_r,
                "seconds": seconds * args.scale,
                "seed": seed,
                "singles": len(singles),
                "true_pairs": pet.n_true,
                "petnet_f1": pet.f1,
                "petnet_one_tiling_f1": one.f1,
                "sorter_takeWinnerOfGoods_msd10_4ns_f1": sorter[4.0],
                "sorter_takeWinnerOfGoods_msd10_1ns_f1": sorter[1.0],
            }
        )
        print(f"held out {held_out[-1]}", flush=True)

    out = Path(args.out) if args.out else shipped_model_path()
    metadata = {
        "preset": PRESET,
        "steps": STEPS,
        "bin_ns": BIN_NS,
        "window_ns": WINDOW_NS,
        "tolerance_steps": TOLERANCE_STEPS,
        "recipe": "packages/hai-pet/benchmarks/train_shipped_model.py",
    }
    net.save(out, metadata=metadata)
    write_json(
        out.with_suffix(".json"),
        {
            "file": out.name,
            "bytes": out.stat().st_size,
            "parameters": sum(p.numel() for p in net.module_.parameters()),
            "preset": PRESET,
            "encoding": {"steps": STEPS, "bin_ns": BIN_NS},
            "detect": {"window_ns": WINDOW_NS, "tolerance_steps": TOLERANCE_STEPS},
            "petnet": params,
            "training_acquisitions": acquisitions,
            "training_samples": sum(a["samples"] for a in acquisitions),
            "epochs_run": len(net.history_),
            "val_loss": [r.val_loss for r in net.history_],
            "pos_weight": net.pos_weight_,
            "train_wall_s": round(train_s, 1),
            "total_wall_s": round(time.perf_counter() - started, 1),
            "held_out": held_out,
            "machine": {
                "platform": platform.platform(),
                "cpus": os.cpu_count(),
                "threads": args.threads,
                "load_average": os.getloadavg(),
                "torch": torch.__version__,
            },
            "scale": args.scale,
            "command": "OMP_NUM_THREADS=1 python packages/hai-pet/benchmarks/train_shipped_model.py"
            + (f" --scale {args.scale:g}" if args.scale != 1 else ""),
        },
    )
    print(f"-> {out} ({out.stat().st_size} bytes) and {out.with_suffix('.json').name}")


if __name__ == "__main__":
    main()
