"""PETNet inference throughput against GATE's sorter, with warm-up and repeats (issue 19.2).

Simulates the one-ring clinical-like scanner of ``bench_petnet_vs_sorter.py``, trains the
geometry-local PETNet briefly on one acquisition and times, on an independent one, in the same
process and interleaved: the sorter (takeWinnerOfGoods, and SCW), and PETNet from singles to
pairs (spike encoding, network, pairs) with the network integrated step by step (``scan``) and
over the whole time window at once (``parallel``). Each method runs once to warm up, then
``--repeats`` times; the table gives the median and the best singles per second. Also checks
that both PETNet paths give the same pairs. Writes JSON (default ``bench_petnet_inference.json``).

    python packages/hai-pet/benchmarks/bench_petnet_inference.py [--repeats 5] [--threads 1]
"""

from __future__ import annotations

import argparse
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
    simulate,
    sort_coincidences,
    sort_scw,
    spikes_to_pairs,
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
    parser.add_argument("--out", default="bench_petnet_inference.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    scanner = get_scanner("clinical", rings=1)
    source = [CylinderSource(args.activity_bq, radius_mm=100.0, length_mm=scanner.axial_length_mm)]
    opts = {
        "n_crystals": scanner.n_crystals,
        "crystals_per_sector": scanner.crystals_per_sector,
        "crystals_per_ring": scanner.crystals_per_ring,
        "bin_ns": 0.5,
        "n_steps": args.steps,
    }
    train = simulate(scanner, source, seconds=args.train_seconds, seed=0).singles
    test = simulate(scanner, source, seconds=args.test_seconds, seed=1).singles
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

    def petnet(method: str) -> Callable[[], np.ndarray]:
        def run() -> np.ndarray:
            e = encode_spikes(test, **opts)  # type: ignore[arg-type]
            coords = net.predict_spikes(e, method=method)
            return spikes_to_pairs(coords, e, test, window_ns=4.0, tolerance_steps=2)

        return run

    methods: dict[str, Callable[[], object]] = {
        "sorter takeWinnerOfGoods": lambda: sort_coincidences(test, 4.0, policy="takeWinnerOfGoods"),
        "sorter SCW": lambda: sort_scw(test, 4.0),
        "PETNet scan": petnet("scan"),
        "PETNet parallel": petnet("parallel"),
    }
    times: dict[str, list[float]] = {name: [] for name in methods}
    results = {name: fn() for name, fn in methods.items()}  # warm-up
    same_pairs = bool(np.array_equal(results["PETNet scan"], results["PETNet parallel"]))  # type: ignore[arg-type]
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
    sorter = rows["sorter takeWinnerOfGoods"]["median_singles_per_s"]
    print(f"{n} singles, {args.repeats} repeats after one warm-up, {args.threads} thread(s)")
    print(f"{'method':<28}{'median s':>10}{'singles/s (median)':>20}{'(best)':>12}{'vs sorter':>11}")
    for name, r in rows.items():
        print(
            f"{name:<28}{r['median_s']:>10.4f}{r['median_singles_per_s']:>20.3g}"
            f"{r['best_singles_per_s']:>12.3g}{r['median_singles_per_s'] / sorter:>10.3f}x"
        )
    print(f"PETNet scan and parallel give the same pairs: {same_pairs}")
    write_json(
        args.out,
        {
            "singles": n,
            "repeats": args.repeats,
            "threads": args.threads,
            "methods": rows,
            "petnet_parallel_over_scan": rows["PETNet parallel"]["median_singles_per_s"]
            / rows["PETNet scan"]["median_singles_per_s"],
            "petnet_parallel_over_sorter": rows["PETNet parallel"]["median_singles_per_s"] / sorter,
            "same_pairs": same_pairs,
        },
    )


if __name__ == "__main__":
    main()
