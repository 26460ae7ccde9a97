"""PETNet against GATE's classical sorter and SCW on the clinical-like ring (held-out data).

Simulates a one-ring clinical-like scanner at a high singles rate, trains the geometry-aware
PETNet on the spike trains of one simulated acquisition and scores pair-level F1 (a pair is
found only when both of its singles are) on an independent acquisition (another seed), next to
the sorter (takeWinnerOfGoods, no energy window: PETNet sees no energies either) and PETNet's
SCW baseline. Also reports inference throughput (singles per second) on this machine's CPU.
Writes JSON (default ``bench_petnet_vs_sorter.json``).

    python packages/hai-pet/benchmarks/bench_petnet_vs_sorter.py [--epochs 8] [--out FILE]
"""

from __future__ import annotations

import argparse
import time

import torch

from hai.pet import (
    CylinderSource,
    PETNet,
    coincidence_tree,
    encode_spikes,
    get_scanner,
    pair_metrics,
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
    parser.add_argument("--test-seconds", type=float, default=1e-4)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--bin-ns", type=float, default=0.5)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--patience", type=int, default=3)
    parser.add_argument("--lr", type=float, default=5e-3)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--init-scale", type=float, default=1.0)
    parser.add_argument("--window-ns", type=float, default=4.0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default="bench_petnet_vs_sorter.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    scanner = get_scanner("clinical", rings=1)
    source = [CylinderSource(args.activity_bq, radius_mm=100.0, length_mm=scanner.axial_length_mm)]
    enc_opts = {
        "n_crystals": scanner.n_crystals,
        "crystals_per_sector": scanner.crystals_per_sector,
        "crystals_per_ring": scanner.crystals_per_ring,
        "bin_ns": args.bin_ns,
        "n_steps": args.steps,
    }
    train = simulate(scanner, source, seconds=args.train_seconds, seed=0).singles
    test = simulate(scanner, source, seconds=args.test_seconds, seed=1).singles
    enc_train = encode_spikes(train, **enc_opts)  # type: ignore[arg-type]
    used = enc_train.nonempty_samples
    x, y = enc_train.dense(used), enc_train.labels_dense(used)

    t0 = time.perf_counter()
    net = PETNet(
        scanner.n_crystals,
        hidden=args.hidden,
        init_scale=args.init_scale,
        geometry=True,
        crystals_per_ring=scanner.crystals_per_ring,
        fan=40,
        lr=args.lr,
        epochs=args.epochs,
        patience=args.patience,
        batch_size=32,
        seed=42,
        device="cpu",
    ).fit(x, y)
    train_s = time.perf_counter() - t0

    enc_test = encode_spikes(test, **enc_opts)  # type: ignore[arg-type]
    used_test = enc_test.nonempty_samples
    xt = enc_test.dense(used_test)
    t0 = time.perf_counter()
    pred = net.predict(xt, batch_size=64)
    pairs = spikes_to_pairs(
        pred, enc_test, test, window_ns=args.window_ns, samples=used_test, tolerance_steps=2
    )
    petnet_s = time.perf_counter() - t0
    petnet = pair_metrics(coincidence_tree(test, pairs), test)

    t0 = time.perf_counter()
    sorted_ = sort_coincidences(test, args.window_ns, policy="takeWinnerOfGoods")
    sorter_s = time.perf_counter() - t0
    sorter = pair_metrics(sorted_.coincidences, test)
    t0 = time.perf_counter()
    scw_result = sort_scw(test, args.window_ns)
    scw_s = time.perf_counter() - t0
    scw = pair_metrics(scw_result.coincidences, test)

    n = len(test)
    result = {
        "device": "cpu",
        "threads": args.threads,
        "settings": vars(args),
        "train_singles": len(train),
        "train_samples": len(used),
        "test_singles": n,
        "train_seconds_wall": round(train_s, 1),
        "epochs_run": len(net.history_),
        "val_loss": [round(r.val_loss, 6) for r in net.history_],
        "f1": {"PETNet": petnet.f1, "takeWinnerOfGoods": sorter.f1, "SCW": scw.f1},
        "precision": {
            "PETNet": petnet.precision,
            "takeWinnerOfGoods": sorter.precision,
            "SCW": scw.precision,
        },
        "recall": {"PETNet": petnet.recall, "takeWinnerOfGoods": sorter.recall, "SCW": scw.recall},
        "singles_per_s": {"PETNet": n / petnet_s, "takeWinnerOfGoods": n / sorter_s, "SCW": n / scw_s},
        "petnet_over_sorter_f1": petnet.f1 / sorter.f1 if sorter.f1 else None,
    }
    write_json(args.out, result)
    print(f"{'method':<20}{'precision':>10}{'recall':>10}{'F1':>10}{'singles/s':>14}")
    for name in ("PETNet", "takeWinnerOfGoods", "SCW"):
        print(
            f"{name:<20}{result['precision'][name]:>10.4f}{result['recall'][name]:>10.4f}"  # type: ignore[index]
            f"{result['f1'][name]:>10.4f}{result['singles_per_s'][name]:>14.0f}"  # type: ignore[index]
        )
    print(f"-> {args.out}")


if __name__ == "__main__":
    main()
