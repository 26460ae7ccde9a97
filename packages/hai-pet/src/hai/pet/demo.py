"""hai-pet's part of ``hai demo``: simulate a clinical-like scan, sort it with GATE's policies.

Simulates 5 ms of a 200 MBq water cylinder in the clinical-like scanner (about a million decays),
writes and re-reads the GATE ROOT file, sorts the singles with a 4 ns window, a 350–650 keV
energy window and a minimum sector difference of 3 under every GATE multiple-coincidence
policy, once without the energy window, and with PETNet's sliding-window (SCW) baseline, and
scores each against the truth at the pair level (the truth keeps pairs whose photons deposited
only part of their energy, which an energy window rejects by design). A delayed window
estimates the randoms, to compare with the true randoms count. Then a small geometry-local
PETNet is trained for a few seconds on one short acquisition of a single clinical ring at a high
rate and scored next to the sorter on another (pair-level F1; the full-size comparison is
``benchmarks/bench_petnet_vs_sorter.py``). About 10 s on 2 CPU cores.
"""

from __future__ import annotations

import time

import numpy as np

from hai.pet.gate_io import read_singles, write_gate
from hai.pet.metrics import pair_metrics
from hai.pet.scanner import get_scanner
from hai.pet.simulate import CylinderSource, simulate
from hai.pet.sorter import POLICIES, sort_coincidences, sort_scw
from hai.shared import DemoContext, Figure, Section, Table, torch_threads

ACTIVITY_BQ = 2e8
SECONDS = 0.005
WINDOW_NS = 4.0
ENERGY_WINDOW_KEV = (350.0, 650.0)
MIN_SECTOR_DIFFERENCE = 3
NO_ENERGY_WINDOW = "takeWinnerOfGoods, no energy window"
PETNET_ACTIVITY_BQ = 1.5e9
PETNET_SECONDS = 2e-4


def run(context: DemoContext) -> Section:
    """Run the demo in ``context.workdir`` and return its report section."""
    scanner = get_scanner("clinical")
    start = time.perf_counter()
    sim = simulate(
        scanner,
        [CylinderSource(ACTIVITY_BQ, radius_mm=100.0, length_mm=scanner.axial_length_mm)],
        seconds=SECONDS,
        seed=context.seed,
    )
    simulate_s = time.perf_counter() - start
    path = write_gate(context.workdir / "pet_sim.root", sim.trees)
    singles = read_singles(path, progress_bar=False)
    round_trip_ok = singles.equals(sim.singles)

    rows: list[list[float | int | str | bool | None]] = []
    scores: dict[str, tuple[float, float, float]] = {}
    sort_seconds = 0.0
    for policy in [*POLICIES, "SCW", NO_ENERGY_WINDOW]:
        t0 = time.perf_counter()
        if policy == "SCW":
            result = sort_scw(singles, WINDOW_NS)
        elif policy == NO_ENERGY_WINDOW:
            result = sort_coincidences(
                singles,
                WINDOW_NS,
                policy="takeWinnerOfGoods",
                min_sector_difference=MIN_SECTOR_DIFFERENCE,
                sectors=scanner.sectors,
            )
        else:
            result = sort_coincidences(
                singles,
                WINDOW_NS,
                policy=policy,
                energy_window_kev=ENERGY_WINDOW_KEV,
                min_sector_difference=MIN_SECTOR_DIFFERENCE,
                sectors=scanner.sectors,
            )
        sort_seconds += time.perf_counter() - t0
        m = pair_metrics(result.coincidences, singles)
        scores[policy] = (m.precision, m.recall, m.f1)
        rows.append(
            [
                policy,
                len(result),
                len(result.multiples),
                m.predicted_trues,
                m.predicted_scatters,
                m.predicted_randoms,
                round(m.precision, 4),
                round(m.recall, 4),
                round(m.f1, 4),
            ]
        )
    prompt, delayed = (
        sort_coincidences(
            singles,
            WINDOW_NS,
            policy="takeWinnerOfGoods",
            offset_ns=offset,
            energy_window_kev=ENERGY_WINDOW_KEV,
            min_sector_difference=MIN_SECTOR_DIFFERENCE,
            sectors=scanner.sectors,
        )
        for offset in (0.0, 100.0)
    )
    true_randoms = int(np.sum(prompt.coincidences["eventID1"] != prompt.coincidences["eventID2"]))
    throughput = len(singles) * (len(POLICIES) + 2) / sort_seconds if sort_seconds > 0 else None
    best = max(scores, key=lambda k: scores[k][2])
    petnet_rows, petnet_metrics = _petnet(context.seed)
    return Section(
        domain="pet",
        title="PET coincidence sorting: GATE's policies against the truth",
        summary=(
            f"{SECONDS * 1e3:g} ms of a {ACTIVITY_BQ / 1e6:g} MBq water cylinder in the clinical-like "
            f"scanner ({scanner.crystals_per_ring} crystals × {scanner.rings} rings) were simulated "
            f"({sim.n_decays} decays, {len(sim.singles)} singles with phantom scatter and randoms), "
            f"written to a GATE ROOT file, read back, and sorted with a {WINDOW_NS:g} ns window, a "
            f"{ENERGY_WINDOW_KEV[0]:g}–{ENERGY_WINDOW_KEV[1]:g} keV energy window and minimum sector "
            f"difference {MIN_SECTOR_DIFFERENCE}. Pair-level scores count a pair only when both of its "
            f"singles are those of one unscattered annihilation."
        ),
        metrics={
            "decays": sim.n_decays,
            "singles": len(sim.singles),
            "simulate_seconds": round(simulate_s, 2),
            "root_round_trip_identical": round_trip_ok,
            "sorter_singles_per_s": None if throughput is None else round(throughput),
            "best_policy": best,
            "best_f1": round(scores[best][2], 4),
            "takeWinnerOfGoods_f1": round(scores["takeWinnerOfGoods"][2], 4),
            "takeWinnerOfGoods_no_energy_window_f1": round(scores[NO_ENERGY_WINDOW][2], 4),
            "SCW_f1": round(scores["SCW"][2], 4),
            "true_randoms_in_prompts": true_randoms,
            "delayed_window_randoms_estimate": len(delayed),
            **petnet_metrics,
        },
        figures=[_figure(scores)],
        tables=[
            Table(
                caption="Coincidences per policy and their pair-level scores against the truth",
                columns=[
                    "policy",
                    "pairs",
                    "kept multiples",
                    "trues",
                    "scatters",
                    "randoms",
                    "precision",
                    "recall",
                    "F1",
                ],
                rows=rows,
            ),
            Table(
                caption=(
                    f"PETNet (geometry-local, trained for a few seconds) against the sorter on held-out "
                    f"singles of one clinical ring at {PETNET_ACTIVITY_BQ / 1e9:g} GBq, no energy window"
                ),
                columns=["method", "precision", "recall", "F1", "singles/s"],
                rows=petnet_rows,
            ),
        ],
    )


def _petnet(seed: int) -> tuple[list[list[float | int | str | bool | None]], dict[str, float | int]]:

    from hai.pet.petnet import PETNet
    from hai.pet.sorter import coincidence_tree
    from hai.pet.spikes import encode_spikes, spikes_to_pairs

    scanner = get_scanner("clinical", rings=1)
    source = [CylinderSource(PETNET_ACTIVITY_BQ, radius_mm=100.0, length_mm=scanner.axial_length_mm)]
    train, test = (simulate(scanner, source, seconds=PETNET_SECONDS, seed=seed + k).singles for k in (1, 2))
    opts = {
        "n_crystals": scanner.n_crystals,
        "crystals_per_sector": scanner.crystals_per_sector,
        "crystals_per_ring": scanner.crystals_per_ring,
        "bin_ns": 0.5,
        "n_steps": 32,
    }
    enc = encode_spikes(train, **opts)  # type: ignore[arg-type]
    used = enc.nonempty_samples
    with torch_threads(1):  # a tiny network: one thread is the fastest
        start = time.perf_counter()
        net = PETNet(
            scanner.n_crystals,
            local=True,
            hidden=16,
            crystals_per_ring=scanner.crystals_per_ring,
            fan=20,
            init_scale=2.0,
            lr=5e-3,
            epochs=3,
            patience=3,
            batch_size=128,
            seed=seed,
            device="cpu",
        ).fit(enc.dense(used), enc.labels_dense(used))
        train_s = time.perf_counter() - start
        start = time.perf_counter()
        enc_test = encode_spikes(test, **opts)  # type: ignore[arg-type]
        pairs = spikes_to_pairs(
            net.predict_spikes(enc_test), enc_test, test, window_ns=WINDOW_NS, tolerance_steps=2
        )
        petnet_s = time.perf_counter() - start
    start = time.perf_counter()
    sorted_ = sort_coincidences(test, WINDOW_NS, policy="takeWinnerOfGoods")
    sorter_s = time.perf_counter() - start
    rows: list[list[float | int | str | bool | None]] = []
    f1 = {}
    for name, coinc, seconds in (
        ("PETNet", coincidence_tree(test, pairs), petnet_s),
        ("takeWinnerOfGoods", sorted_.coincidences, sorter_s),
    ):
        m = pair_metrics(coinc, test)
        f1[name] = m.f1
        rows.append(
            [
                name,
                round(m.precision, 4),
                round(m.recall, 4),
                round(m.f1, 4),
                round(len(test) / max(seconds, 1e-9)),
            ]
        )
    return rows, {
        "petnet_train_singles": len(train),
        "petnet_test_singles": len(test),
        "petnet_train_seconds": round(train_s, 2),
        "petnet_f1": round(f1["PETNet"], 4),
        "petnet_sorter_f1_same_singles": round(f1["takeWinnerOfGoods"], 4),
    }


def _figure(scores: dict[str, tuple[float, float, float]]) -> Figure:
    from matplotlib.figure import Figure as MplFigure

    fig = MplFigure(figsize=(8, 3.6))
    ax = fig.subplots()
    names = list(scores)
    x = np.arange(len(names))
    for k, label in enumerate(("precision", "recall", "F1")):
        ax.bar(x + (k - 1) * 0.27, [scores[n][k] for n in names], width=0.27, label=label)
    ax.set_xticks(x, names, rotation=35, ha="right", fontsize=8)
    ax.set_ylim(0, 1)
    ax.set_ylabel("pair-level score")
    ax.legend(fontsize=8, ncols=3, loc="upper center")
    fig.tight_layout()
    return Figure.from_matplotlib(fig, "pet_policies", "Precision, recall and F1 of each sorting policy")
