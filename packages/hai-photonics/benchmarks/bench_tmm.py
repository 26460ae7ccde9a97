"""hai.photonics.tmm against tmm and tmm_fast (the anchors), side by side in one run.

Workload (the issue's): 1,000 random 10-layer stacks of the 18 OptoLlama materials (10–500 nm on
the 10 nm grid, no equal neighbours), air on both sides, normal incidence, s polarisation, 171
wavelengths over 300–2000 nm, the same n,k arrays for every solver. Measured:

* ``tmm.coh_tmm``: a Python loop over stacks × wavelengths, timed on ``--tmm-stacks`` stacks
  (default 50; the loop is linear in the stack count) and reported as stacks/s;
* ``tmm_fast.coh_tmm``: one batched call on all stacks (complex128 as tmm_fast computes);
* ``hai.photonics.tmm.coherent`` in complex128 and complex64 on all stacks;
* data set generation (``generate_dataset``: random stacks, simulation, float16 shards on disk).

Each batched timing is the best of ``--repeats`` runs after one warm-up. Agreement with ``tmm``
(max |ΔR|, |ΔT|) is computed on the stacks ``tmm`` ran. Prints a table with the ratios to
tmm_fast and writes ``bench_tmm.json`` to ``--out``.

    python packages/hai-photonics/benchmarks/bench_tmm.py --out build/bench [--device cuda]
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hai.photonics import OPTOLLAMA, Vocabulary, coherent, generate_dataset, random_stacks
from hai.photonics.materials import nk_tensor
from hai.shared import resolve_device, write_json


def best_time(fn: Callable[[], Any], repeats: int, sync: Callable[[], None]) -> float:
    fn()
    sync()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    return min(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="build/bench", help="folder for bench_tmm.json")
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:1, ...")
    parser.add_argument("--stacks", type=int, default=1000)
    parser.add_argument("--layers", type=int, default=10)
    parser.add_argument("--tmm-stacks", type=int, default=50, help="stacks for the slow tmm loop")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dataset-stacks", type=int, default=4000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    args = parser.parse_args(argv)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    # tmm_fast warns when it clamps the phase of opaque layers (here: thick metals); its R, T stay exact
    warnings.filterwarnings("ignore", message="Opacity warning")

    import tmm  # type: ignore[import-untyped]
    import tmm_fast  # type: ignore[import-untyped]

    device = resolve_device(args.device)
    sync: Callable[[], None] = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    vocab = Vocabulary()
    ids = random_stacks(
        args.stacks, np.random.default_rng(args.seed), vocab, min_layers=args.layers, max_layers=args.layers
    )
    mat = torch.as_tensor(vocab.material_of_id)[ids[:, : args.layers]]
    thick = torch.as_tensor(vocab.thickness_of_id)[ids[:, : args.layers]]
    wl = torch.tensor(OPTOLLAMA.wavelengths_nm, dtype=torch.float64)
    table = nk_tensor(list(vocab.materials), wl.numpy())
    air = torch.ones(args.stacks, 1, wl.numel(), dtype=torch.complex128)
    n = torch.cat([air, table[mat], air], dim=1)  # (S, L+2, W)
    d = torch.cat([torch.zeros(args.stacks, 1), thick, torch.zeros(args.stacks, 1)], dim=1).double()
    S, W = args.stacks, wl.numel()
    rows: list[dict[str, Any]] = []

    # tmm: the exact reference, a Python loop
    sub = min(args.tmm_stacks, S)
    n_np, d_np, wl_np = n[:sub].numpy(), d[:sub].numpy(), wl.numpy()
    R_ref = np.empty((sub, W))
    T_ref = np.empty((sub, W))
    start = time.perf_counter()
    for s in range(sub):
        d_list = [math.inf, *d_np[s, 1:-1].tolist(), math.inf]
        for w in range(W):
            out = tmm.coh_tmm("s", n_np[s, :, w].tolist(), d_list, 0.0, float(wl_np[w]))
            R_ref[s, w], T_ref[s, w] = out["R"], out["T"]
    t_tmm = time.perf_counter() - start
    rows.append(
        {
            "solver": "tmm.coh_tmm (Python loop)",
            "stacks_timed": sub,
            "seconds": t_tmm,
            "stacks_per_s": sub / t_tmm,
        }
    )

    # tmm_fast: batched torch (complex128)
    n_dev, d_m = n.to(device), (d * 1e-9).to(device)
    d_m[:, 0] = d_m[:, -1] = math.inf
    theta = torch.zeros(1, dtype=torch.float64, device=device)
    lam_m = (wl * 1e-9).to(device)

    def run_fast() -> dict[str, Any]:
        return tmm_fast.coh_tmm("s", n_dev, d_m, theta, lam_m, device=device)

    t_fast = best_time(run_fast, args.repeats, sync)
    fast = run_fast()
    R_fast = fast["R"][:sub, 0].cpu().numpy()
    T_fast = fast["T"][:sub, 0].cpu().numpy()
    rows.append(
        {
            "solver": "tmm_fast.coh_tmm",
            "stacks_timed": S,
            "seconds": t_fast,
            "stacks_per_s": S / t_fast,
            "max_abs_dR_vs_tmm": float(np.abs(R_fast - R_ref).max()),
            "max_abs_dT_vs_tmm": float(np.abs(T_fast - T_ref).max()),
        }
    )

    # hai, complex128 and complex64
    for dtype, label in ((torch.complex128, "complex128"), (torch.complex64, "complex64")):
        n_h = n_dev.to(dtype)
        d_h = d.to(device)

        def run_hai(n_h: torch.Tensor = n_h, d_h: torch.Tensor = d_h) -> Any:
            return coherent(n_h, d_h, wl.to(device))

        t_hai = best_time(run_hai, args.repeats, sync)
        res = run_hai()
        rows.append(
            {
                "solver": f"hai.photonics.tmm.coherent ({label})",
                "stacks_timed": S,
                "seconds": t_hai,
                "stacks_per_s": S / t_hai,
                "max_abs_dR_vs_tmm": float(np.abs(res.R[:sub].double().cpu().numpy() - R_ref).max()),
                "max_abs_dT_vs_tmm": float(np.abs(res.T[:sub].double().cpu().numpy() - T_ref).max()),
            }
        )

    # data set generation throughput (random stacks of 1–20 layers, simulation, float16 shards)
    with tempfile.TemporaryDirectory() as tmp:
        generate_dataset(Path(tmp) / "warm", 64, seed=1, device=device, progress_bar=False)
        info = generate_dataset(
            Path(tmp) / "ds", args.dataset_stacks, seed=args.seed, device=device, progress_bar=False
        )
    dataset_rate = info.stacks_per_s

    fast_rate = rows[1]["stacks_per_s"]
    for row in rows:
        row["ratio_to_tmm_fast"] = row["stacks_per_s"] / fast_rate
    result = {
        "workload": {
            "stacks": S,
            "layers": args.layers,
            "wavelengths": W,
            "range_nm": [float(wl[0]), float(wl[-1])],
            "angle_deg": 0.0,
            "pol": "s",
            "media": "air | stack | air",
        },
        "machine": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "device": str(device),
            "device_name": torch.cuda.get_device_name(device)
            if device.type == "cuda"
            else platform.processor(),
            "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
        },
        "solvers": rows,
        "dataset_generation": {
            "stacks": args.dataset_stacks,
            "stacks_per_s": dataset_rate,
            "wall_s": info.wall_s,
        },
    }
    out = Path(args.out)
    write_json(out / "bench_tmm.json", result)

    print(f"{S} stacks x {args.layers} layers x {W} wavelengths on {device} (torch {torch.__version__})")
    header = ("solver", "time (s)", "stacks/s", "vs tmm_fast", "max |dR| vs tmm")
    print(f"| {header[0]:<40} | {header[1]:>9} | {header[2]:>10} | {header[3]:>11} | {header[4]:>15} |")
    print(f"|{'-' * 42}|{'-' * 11}|{'-' * 12}|{'-' * 13}|{'-' * 17}|")
    for row in rows:
        dr = row.get("max_abs_dR_vs_tmm")
        print(
            f"| {row['solver']:<40} | {row['seconds']:9.3f} | {row['stacks_per_s']:10.0f} | "
            f"{row['ratio_to_tmm_fast']:10.2f}x | {'' if dr is None else f'{dr:.1e}':>15} |"
        )
    rate = "n/a" if dataset_rate is None else f"{dataset_rate:.0f}"
    print(
        f"data set generation: {rate} stacks/s ({args.dataset_stacks} stacks of 1–20 layers, float16 shards)"
    )
    print(f"wrote {out / 'bench_tmm.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
