"""PETNet inference throughput against GATE's sorter, with warm-up and repeats (issue 19).

Times, in one process and interleaved, the sorter (takeWinnerOfGoods with a 4 ns window, the
same with the tuned setting of ``bench_petnet_vs_sorter.py``: 1 ns and minimum sector difference
10, and SCW) and PETNet from singles to pairs, ``PETNet.predict_pairs`` (spike encoding, network,
pairs; two tilings of the time axis, ``overlap=True``, as ``hai pet detect``, and one tiling),
with the local network run event-driven (``method="event"``, the default), over the whole time
window at once (``"parallel"``) and step by step on every row (``"scan"``, the reference).

By default the network is the one of ``bench_petnet_vs_sorter.py``: the geometry-local PETNet
trained briefly on one acquisition of a one-ring clinical-like scanner (240 crystals), timed on
an independent one; ``--shipped`` times the shipped model (``petnet-clinical.safetensors``, the
4-ring clinical preset, 960 crystals) with its window (1 ns) and tolerance (2 steps) instead.
Each method runs once to warm up, then ``--repeats`` times; the table gives the median and the
best singles per second. Checks that every PETNet method gives the same pairs. Writes JSON
(default ``bench_petnet_inference.json``).

    OMP_NUM_THREADS=1 python packages/hai-pet/benchmarks/bench_petnet_inference.py [--shipped]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch

from hai.pet import (
    CylinderSource,
    PETNet,
    encode_spikes,
    get_scanner,
    shipped_model_path,
    simulate,
    sort_coincidences,
    sort_scw,
)
from hai.shared import write_json


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--activity-bq", type=float, default=1.5e9)
    parser.add_argument("--train-seconds", type=float, default=2e-4)
    parser.add_argument("--test-seconds", type=float, default=2e-3)
    parser.add_argument("--steps", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--shipped", action="store_true", help="time the shipped model (4-ring clinical)")
    parser.add_argument("--no-scan", action="store_true", help="leave out the slow step-by-step reference")
    parser.add_argument("--out", default="bench_petnet_inference.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    scanner = get_scanner("clinical") if args.shipped else get_scanner("clinical", rings=1)
    source = [CylinderSource(args.activity_bq, radius_mm=100.0, length_mm=scanner.axial_length_mm)]
    test = simulate(scanner, source, seconds=args.test_seconds, seed=1).singles
    if args.shipped:
        net = PETNet.load(shipped_model_path())
        window_ns, tolerance, steps, bin_ns = 1.0, 2, 32, 0.5
    else:
        window_ns, tolerance, steps, bin_ns = 4.0, 2, args.steps, 0.5
        opts = {
            "n_crystals": scanner.n_crystals,
            "crystals_per_sector": scanner.crystals_per_sector,
            "crystals_per_ring": scanner.crystals_per_ring,
            "bin_ns": bin_ns,
            "n_steps": steps,
        }
        train = simulate(scanner, source, seconds=args.train_seconds, seed=0).singles
        enc = encode_spikes(train, **opts)  # type: ignore[arg-type]
        used = enc.nonempty_samples
        net = PETNet(
            scanner.n_crystals,
            local=True,
            hidden=8,
            beta=0.5,
            init_scale=2.0,
            crystals_per_ring=scanner.crystals_per_ring,
            fan=20,
            lr=5e-3,
            epochs=args.epochs,
            seed=42,
            device="cpu",
        ).fit(enc.dense(used), enc.labels_dense(used))

    def petnet(method: str, overlap: bool) -> Callable[[], np.ndarray]:
        return lambda: net.predict_pairs(
            test,
            window_ns=window_ns,
            crystals_per_sector=scanner.crystals_per_sector,
            crystals_per_ring=scanner.crystals_per_ring,
            bin_ns=bin_ns,
            n_steps=steps,
            tolerance_steps=tolerance,
            overlap=overlap,
            method=method,
        )

    methods: dict[str, Callable[[], object]] = {
        "sorter takeWinnerOfGoods 4 ns": lambda: sort_coincidences(test, 4.0, policy="takeWinnerOfGoods"),
        "sorter takeWinnerOfGoods tuned": lambda: sort_coincidences(
            test, 1.0, policy="takeWinnerOfGoods", min_sector_difference=10, sectors=scanner.sectors
        ),
        "sorter SCW": lambda: sort_scw(test, 4.0),
    }
    petnet_rows = [("event", True), ("parallel", True), ("scan", True), ("event", False), ("parallel", False)]
    for method, overlap in petnet_rows:
        if method == "scan" and args.no_scan:
            continue
        name = f"PETNet {'two tilings' if overlap else 'one tiling'}, {method}"
        methods[name] = petnet(method, overlap)
    times: dict[str, list[float]] = {name: [] for name in methods}
    results = {name: fn() for name, fn in methods.items()}  # warm-up
    same_pairs = all(
        np.array_equal(results[name], results[reference])  # type: ignore[arg-type]
        for tiling in ("two tilings", "one tiling")
        for reference in [f"PETNet {tiling}, parallel"]
        for name in methods
        if name.startswith(f"PETNet {tiling}")
    )
    for _ in range(args.repeats):
        for name, fn in methods.items():  # interleaved, so that load on the machine hits all alike
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)

    n = len(test)
    rows = {
        name: {
            "median_s": statistics.median(ts),
            "best_s": min(ts),
            "median_singles_per_s": n / statistics.median(ts),
            "best_singles_per_s": n / min(ts),
        }
        for name, ts in times.items()
    }
    sorter = rows["sorter takeWinnerOfGoods 4 ns"]["median_singles_per_s"]
    tuned = rows["sorter takeWinnerOfGoods tuned"]["median_singles_per_s"]
    what = "shipped model, clinical preset" if args.shipped else "one clinical ring, briefly trained network"
    print(f"{n} singles ({what}), {args.repeats} repeats after one warm-up, {args.threads} thread(s)")
    header = f"{'method':<34}{'median s':>10}{'singles/s (median)':>20}{'(best)':>12}"
    print(f"{header}{'vs 4 ns':>9}{'vs tuned':>10}")
    for name, r in rows.items():
        print(
            f"{name:<34}{r['median_s']:>10.4f}{r['median_singles_per_s']:>20.3g}"
            f"{r['best_singles_per_s']:>12.3g}{r['median_singles_per_s'] / sorter:>8.2f}x"
            f"{r['median_singles_per_s'] / tuned:>9.2f}x"
        )
    print(f"every PETNet method gives the same pairs (per tiling): {same_pairs}")
    write_json(
        args.out,
        {
            "singles": n,
            "shipped_model": args.shipped,
            "repeats": args.repeats,
            "threads": args.threads,
            "methods": rows,
            "same_pairs": same_pairs,
            "machine": {
                "platform": platform.platform(),
                "cpus": os.cpu_count(),
                "load_average": list(os.getloadavg()),
                "torch": torch.__version__,
            },
        },
    )


if __name__ == "__main__":
    main()
