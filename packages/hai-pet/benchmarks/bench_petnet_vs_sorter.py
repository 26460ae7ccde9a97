"""PETNet against GATE's classical sorter and SCW on the clinical-like ring (held-out data).

Simulates a one-ring clinical-like scanner at a high singles rate, trains the geometry-local
PETNet (``local=True``: one small LIF network shared by all crystals, reading each crystal's
own spike, the spikes in the fan of crystals facing it, and the other spikes) on the spike
trains of one simulated acquisition and scores pair-level F1 (a pair is found only when both of
its singles are) on an independent acquisition (another seed), next to the sorter
(takeWinnerOfGoods, no energy window: PETNet sees no energies either), once without and once
with a minimum sector difference equivalent to PETNet's facing fan, and PETNet's SCW baseline.
Also reports inference throughput (singles per second, from singles to pairs, spike encoding
included) on this machine's CPU. Writes JSON (default ``bench_petnet_vs_sorter.json``).

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
    spike_metrics,
    spikes_to_pairs,
)
from hai.shared import write_json


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--activity-bq", type=float, default=1.5e9)
    parser.add_argument("--train-seconds", type=float, default=5e-4)
    parser.add_argument("--test-seconds", type=float, default=2e-3)
    parser.add_argument("--steps", type=int, default=32)
    parser.add_argument("--bin-ns", type=float, default=0.5)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--patience", type=int, default=3)
    parser.add_argument("--lr", type=float, default=5e-3)
    parser.add_argument("--hidden", type=int, default=8)
    parser.add_argument("--beta", type=float, default=0.5)
    parser.add_argument("--timing-weight", type=float, default=0.1)
    parser.add_argument("--init-scale", type=float, default=2.0)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--fan", type=int, default=20, help="facing-fan half width in crystals")
    parser.add_argument("--window-ns", type=float, default=4.0)
    parser.add_argument("--tolerance-steps", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
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
        beta=args.beta,
        timing_weight=args.timing_weight,
        init_scale=args.init_scale,
        local=True,
        crystals_per_ring=scanner.crystals_per_ring,
        fan=args.fan,
        lr=args.lr,
        epochs=args.epochs,
        patience=args.patience,
        batch_size=args.batch_size,
        seed=42,
        device=args.device,
    ).fit(x, y)
    train_s = time.perf_counter() - t0

    def run_petnet() -> tuple[object, object]:
        enc = encode_spikes(test, **enc_opts)  # type: ignore[arg-type]
        coords = net.predict_spikes(enc)
        pairs = spikes_to_pairs(
            coords, enc, test, window_ns=args.window_ns, tolerance_steps=args.tolerance_steps
        )
        return enc, pairs

    run_petnet()  # warm-up (first-call allocations)
    t0 = time.perf_counter()
    enc_test, pairs = run_petnet()
    petnet_s = time.perf_counter() - t0
    petnet = pair_metrics(coincidence_tree(test, pairs), test)
    # spike-level F1 on (a bounded number of) the held-out samples, ±tolerance steps
    some = enc_test.nonempty_samples[:4000]  # type: ignore[attr-defined]
    spikes = spike_metrics(
        net.predict(enc_test.dense(some)),  # type: ignore[attr-defined]
        enc_test.labels_dense(some),  # type: ignore[attr-defined]
        tolerance_steps=args.tolerance_steps,
    )

    # facing fan of ±fan crystals ⇔ sector difference ≥ sectors/2 − ceil(fan / crystals per sector)
    min_sector = scanner.sectors // 2 - -(-args.fan // scanner.crystals_per_sector)
    scores, speed = {"PETNet": petnet}, {"PETNet": len(test) / petnet_s}
    for name, kwargs in {
        "takeWinnerOfGoods": {},
        f"takeWinnerOfGoods, min sector diff {min_sector}": {
            "min_sector_difference": min_sector,
            "sectors": scanner.sectors,
        },
    }.items():
        t0 = time.perf_counter()
        sorted_ = sort_coincidences(test, args.window_ns, policy="takeWinnerOfGoods", **kwargs)  # type: ignore[arg-type]
        speed[name] = len(test) / (time.perf_counter() - t0)
        scores[name] = pair_metrics(sorted_.coincidences, test)
    t0 = time.perf_counter()
    scw_result = sort_scw(test, args.window_ns)
    speed["SCW"] = len(test) / (time.perf_counter() - t0)
    scores["SCW"] = pair_metrics(scw_result.coincidences, test)

    sorter = scores["takeWinnerOfGoods"]
    result = {
        "device": str(net.device_),
        "threads": args.threads,
        "settings": vars(args),
        "train_singles": len(train),
        "train_samples": len(used),
        "test_singles": len(test),
        "test_true_pairs": petnet.n_true,
        "train_seconds_wall": round(train_s, 1),
        "epochs_run": len(net.history_),
        "pos_weight": net.pos_weight_,
        "val_loss": [round(r.val_loss, 6) for r in net.history_],
        "petnet_spike_f1": spikes.f1,
        "f1": {k: m.f1 for k, m in scores.items()},
        "precision": {k: m.precision for k, m in scores.items()},
        "recall": {k: m.recall for k, m in scores.items()},
        "singles_per_s": speed,
        "petnet_over_sorter_f1": petnet.f1 / sorter.f1 if sorter.f1 else None,
        "petnet_over_sorter_speed": speed["PETNet"] / speed["takeWinnerOfGoods"],
    }
    write_json(args.out, result)
    print(
        f"train {len(train)} singles ({len(used)} samples), {len(net.history_)} epochs, "
        f"{train_s:.0f} s; held-out {len(test)} singles, {petnet.n_true} true pairs; "
        f"PETNet spike-level F1 {spikes.f1:.4f}"
    )
    print(f"{'method':<42}{'precision':>10}{'recall':>10}{'F1':>10}{'singles/s':>14}")
    for name, m in scores.items():
        print(f"{name:<42}{m.precision:>10.4f}{m.recall:>10.4f}{m.f1:>10.4f}{speed[name]:>14.0f}")
    f1_ratio, speed_ratio = result["petnet_over_sorter_f1"], result["petnet_over_sorter_speed"]
    print(f"PETNet / sorter: F1 {f1_ratio:.3f}, speed {speed_ratio:.4f}")
    print(f"-> {args.out}")


if __name__ == "__main__":
    main()
