"""``hai pet ...``: simulate singles into a GATE ROOT file, sort a file into coincidences, train
and evaluate PETNet, detect coincidences with PETNet (the shipped model by default).

Thin: each handler parses, calls the public API and prints (``--json`` for machines).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from hai.shared import CheckpointError, InputError, OutputError
from hai.shared.checks import (
    arg_nonnegative_float,
    arg_nonnegative_int,
    arg_positive_float,
    arg_positive_int,
)
from hai.shared.cli import OneLineArgumentParser, print_json

SOURCES = ("cylinder", "point", "line")


def _check_output(path: str | None, flag: str) -> None:
    """Refuse an output path that cannot become a file before any work is done."""
    if path is None:
        return
    target = Path(path)
    if target.is_dir():
        raise OutputError(f"{flag} {path} is a folder", hint="give a file name, not a folder")
    for parent in target.parents:
        if parent.exists():
            if not parent.is_dir():
                raise OutputError(f"{flag} {path}: {parent} is a file, not a folder")
            break


def _cmd_simulate(args: argparse.Namespace) -> int:
    from hai.pet.gate_io import write_gate
    from hai.pet.scanner import get_scanner
    from hai.pet.simulate import CylinderSource, LineSource, PointSource, Source, WaterCylinder, simulate

    _check_output(args.out, "--out")
    scanner = get_scanner(args.preset)
    activity = args.activity_mbq * 1e6
    phantom_r = min(100.0, 0.4 * scanner.radius_mm)
    half = scanner.axial_length_mm / 2
    source: Source
    if args.source == "cylinder":
        source = CylinderSource(activity, radius_mm=phantom_r, length_mm=scanner.axial_length_mm)
    elif args.source == "line":
        source = LineSource(activity, start_mm=(0.0, 0.0, -half), end_mm=(0.0, 0.0, half))
    else:
        source = PointSource(activity)
    phantom = (
        None if args.no_phantom else WaterCylinder(phantom_r, max(2 * scanner.axial_length_mm, 2 * phantom_r))
    )
    start = time.perf_counter()
    sim = simulate(scanner, [source], seconds=args.seconds, seed=args.seed, phantom=phantom)
    seconds = time.perf_counter() - start
    path = write_gate(args.out, sim.trees)
    summary: dict[str, Any] = {
        "out": str(path),
        "preset": scanner.name,
        "source": args.source,
        "activity_bq": activity,
        "seconds": args.seconds,
        "seed": args.seed,
        "decays": sim.n_decays,
        "hits": len(sim.hits),
        "singles": len(sim.singles),
        "simulation_s": round(seconds, 3),
    }
    if args.json:
        print_json(summary)
    else:
        print(
            f"{sim.n_decays} decays -> {len(sim.hits)} hits, {len(sim.singles)} singles "
            f"({scanner.name}, {args.seconds:g} s, {seconds:.2f} s of CPU) -> {path} (trees Hits, Singles)"
        )
    return 0


def _cmd_sort(args: argparse.Namespace) -> int:
    from hai.pet.gate_io import read_singles, write_gate
    from hai.pet.metrics import pair_metrics
    from hai.pet.scanner import get_scanner
    from hai.pet.sorter import sort_coincidences, sort_scw

    _check_output(args.out, "--out")
    sectors = args.sectors
    if sectors is None and args.preset is not None:
        sectors = get_scanner(args.preset).sectors
    singles = read_singles(args.file, args.tree, sectors=sectors or 1, progress_bar=not args.json)
    start = time.perf_counter()
    if args.policy == "SCW":
        result = sort_scw(singles, args.window_ns)
    else:
        result = sort_coincidences(
            singles,
            args.window_ns,
            policy=args.policy,
            offset_ns=args.offset_ns,
            min_sector_difference=args.min_sector_difference,
            energy_window_kev=tuple(args.energy_window_kev) if args.energy_window_kev else None,
            all_singles_open_window=args.all_open,
            sectors=sectors,
        )
    sort_s = time.perf_counter() - start
    path = write_gate(args.out, [result.coincidences])
    summary: dict[str, Any] = {
        "out": str(path),
        "singles": len(singles),
        "coincidences": len(result),
        "windows": result.n_windows,
        "multiple_windows": result.n_multiple_windows,
        "kept_multiples": len(result.multiples),
        "sort_s": round(sort_s, 4),
        "singles_per_s": round(len(singles) / sort_s) if sort_s > 0 else None,
        "settings": result.settings,
    }
    if args.metrics:
        summary["metrics"] = pair_metrics(result.coincidences, singles).to_dict()
    if args.json:
        print_json(summary)
        return 0
    print(
        f"{len(singles)} singles -> {len(result)} coincidences ({result.n_windows} windows, "
        f"{result.n_multiple_windows} multiples; policy {result.settings['policy']}) -> {path}"
    )
    if args.metrics:
        m = summary["metrics"]
        print(
            f"pair-level precision {m['precision']:.4f}  recall {m['recall']:.4f}  F1 {m['f1']:.4f}  "
            f"(trues {m['predicted_trues']}, scatters {m['predicted_scatters']}, "
            f"randoms {m['predicted_randoms']})"
        )
    return 0


def _encode(singles: Any, preset: str, steps: int, bin_ns: float) -> tuple[Any, Any]:
    from hai.pet.scanner import get_scanner
    from hai.pet.spikes import encode_spikes

    scanner = get_scanner(preset)
    enc = encode_spikes(
        singles,
        n_crystals=scanner.n_crystals,
        crystals_per_sector=scanner.crystals_per_sector,
        crystals_per_ring=scanner.crystals_per_ring,
        bin_ns=bin_ns,
        n_steps=steps,
    )
    return scanner, enc


def _cmd_train(args: argparse.Namespace) -> int:
    from hai.pet.gate_io import read_singles
    from hai.pet.petnet import PETNet

    _check_output(args.out, "--out")
    singles = read_singles(args.file, progress_bar=not args.json)
    scanner, enc = _encode(singles, args.preset, args.steps, args.bin_ns)
    used = enc.nonempty_samples
    start = time.perf_counter()
    net = PETNet(
        scanner.n_crystals,
        hidden=args.hidden,
        geometry=args.geometry,
        local=args.local,
        fan=args.fan,
        timing_weight=args.timing_weight,
        crystals_per_ring=scanner.crystals_per_ring,
        lr=args.lr,
        epochs=args.epochs,
        batch_size=args.batch_size,
        seed=args.seed,
        device=args.device,
    ).fit(enc.dense(used), enc.labels_dense(used))
    seconds = time.perf_counter() - start
    path = net.save(args.out, metadata={"preset": args.preset, "steps": args.steps, "bin_ns": args.bin_ns})
    summary = {
        "out": str(path),
        "samples": len(used),
        "epochs_run": len(net.history_),
        "train_loss": [r.train_loss for r in net.history_],
        "val_loss": [r.val_loss for r in net.history_],
        "train_s": round(seconds, 2),
    }
    if args.json:
        print_json(summary)
    else:
        print(
            f"PETNet trained on {len(used)} samples for {len(net.history_)} epochs "
            f"(validation loss {net.history_[-1].val_loss:.5f}, {seconds:.1f} s) -> {path}"
        )
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from hai.pet.gate_io import read_singles
    from hai.pet.metrics import pair_metrics, true_pairs
    from hai.pet.petnet import PETNet
    from hai.pet.sorter import coincidence_tree, sort_coincidences, sort_scw
    from hai.pet.spikes import spikes_to_pairs

    _check_output(args.plot, "--plot")
    net = PETNet.load(args.model, device=args.device)
    preset, steps, bin_ns = _encoding_of(args.model, net.metadata_)
    singles = read_singles(args.file, progress_bar=not args.json)
    scanner, enc = _encode(singles, preset, steps, bin_ns)
    if scanner.n_crystals != net.n_channels:
        raise CheckpointError(
            f"{args.model} has {net.n_channels} input channels, its scanner {preset!r} "
            f"{scanner.n_crystals} crystals"
        )
    rows: dict[str, dict[str, float]] = {}
    start = time.perf_counter()
    pred = net.predict_spikes(enc)
    pairs = spikes_to_pairs(
        pred, enc, singles, window_ns=args.window_ns, tolerance_steps=args.tolerance_steps
    )
    seconds = time.perf_counter() - start
    results = {"PETNet": (coincidence_tree(singles, pairs), seconds)}
    start = time.perf_counter()
    sorted_ = sort_coincidences(
        singles,
        args.window_ns,
        policy=args.policy,
        min_sector_difference=args.min_sector_difference,
        sectors=scanner.sectors,
    )
    results[args.policy] = (sorted_.coincidences, time.perf_counter() - start)
    start = time.perf_counter()
    results["SCW"] = (sort_scw(singles, args.window_ns).coincidences, time.perf_counter() - start)
    for name, (coinc, sec) in results.items():
        m = pair_metrics(coinc, singles)
        rows[name] = {
            "pairs": m.n_predicted,
            "precision": m.precision,
            "recall": m.recall,
            "f1": m.f1,
            "singles_per_s": len(singles) / sec if sec > 0 else float("nan"),
        }
    if args.plot:
        _plot_f1(args.plot, rows)
    if args.json:
        print_json({"singles": len(singles), "true_pairs": len(true_pairs(singles)), "methods": rows})
        return 0
    print(f"{'method':<26}{'pairs':>8}{'precision':>11}{'recall':>9}{'F1':>9}{'singles/s':>13}")
    for name, r in rows.items():
        print(
            f"{name:<26}{int(r['pairs']):>8}{r['precision']:>11.4f}{r['recall']:>9.4f}{r['f1']:>9.4f}"
            f"{r['singles_per_s']:>13.0f}"
        )
    return 0


def _cmd_detect(args: argparse.Namespace) -> int:
    import numpy as np

    from hai.pet.gate_io import read_singles, write_gate
    from hai.pet.metrics import pair_metrics
    from hai.pet.petnet import PETNet, shipped_model_path
    from hai.pet.scanner import get_scanner
    from hai.pet.sorter import coincidence_tree

    _check_output(args.out, "--out")
    model = args.checkpoint
    if model is None:
        model = str(shipped_model_path())
        if not Path(model).is_file():
            raise CheckpointError(
                f"the shipped PETNet {model} is missing from this installation",
                hint="reinstall hai-pet, or give --checkpoint FILE from `hai pet train`",
            )
    net = PETNet.load(model, device=args.device)
    preset, steps, bin_ns = _encoding_of(model, net.metadata_)
    scanner = get_scanner(preset)
    if scanner.n_crystals != net.n_channels:
        raise CheckpointError(
            f"{model} has {net.n_channels} input channels, its scanner {preset!r} "
            f"{scanner.n_crystals} crystals"
        )
    window_ns = args.window_ns if args.window_ns is not None else float(net.metadata_.get("window_ns", 4.0))
    tolerance = (
        args.tolerance_steps
        if args.tolerance_steps is not None
        else int(net.metadata_.get("tolerance_steps", 2))
    )
    singles = read_singles(args.file, args.tree, sectors=scanner.sectors, progress_bar=not args.json)
    if len(singles) == 0:
        raise InputError(f"{args.file} holds no singles")
    crystal_max, sector_max = int(np.max(singles["crystalID"])), int(np.max(singles["rsectorID"]))
    if sector_max >= scanner.sectors or crystal_max >= scanner.crystals_per_sector * scanner.rings:
        raise InputError(
            f"the singles of {args.file} do not come from the {preset!r} scanner of {model} "
            f"(rsectorID up to {sector_max}, crystalID up to {crystal_max}; the scanner has "
            f"{scanner.sectors} sectors and {scanner.crystals_per_sector * scanner.rings} "
            "crystals per sector)",
            hint="give --checkpoint FILE trained for this scanner (`hai pet train --preset ...`)",
        )
    start = time.perf_counter()
    pairs = net.predict_pairs(
        singles,
        window_ns=window_ns,
        crystals_per_sector=scanner.crystals_per_sector,
        crystals_per_ring=scanner.crystals_per_ring,
        bin_ns=bin_ns,
        n_steps=steps,
        tolerance_steps=tolerance,
        overlap=not args.no_overlap,
    )
    seconds = time.perf_counter() - start
    coincidences = coincidence_tree(singles, pairs)
    path = write_gate(args.out, [coincidences])
    summary: dict[str, Any] = {
        "out": str(path),
        "model": model,
        "shipped_model": args.checkpoint is None,
        "preset": preset,
        "singles": len(singles),
        "coincidences": len(coincidences),
        "window_ns": window_ns,
        "tolerance_steps": tolerance,
        "overlap": not args.no_overlap,
        "detect_s": round(seconds, 4),
        "singles_per_s": round(len(singles) / seconds) if seconds > 0 else None,
    }
    if args.metrics:
        summary["metrics"] = pair_metrics(coincidences, singles).to_dict()
    if args.json:
        print_json(summary)
        return 0
    which = "shipped PETNet" if args.checkpoint is None else f"PETNet {model}"
    print(f"{len(singles)} singles -> {len(coincidences)} coincidences ({which}, {preset}) -> {path}")
    if args.metrics:
        m = summary["metrics"]
        print(f"pair-level precision {m['precision']:.4f}  recall {m['recall']:.4f}  F1 {m['f1']:.4f}")
    return 0


def _encoding_of(model: str, meta: dict[str, Any]) -> tuple[str, int, float]:
    """The spike encoding a checkpoint records (preset, steps, bin_ns), checked."""
    from hai.pet.scanner import PRESETS
    from hai.shared.checks import positive_float, positive_int

    if not {"preset", "steps", "bin_ns"} <= set(meta):
        raise CheckpointError(
            f"{model} does not record its spike encoding", hint="train it with `hai pet train`"
        )
    try:
        if meta["preset"] not in PRESETS:
            raise InputError(f"unknown scanner preset {meta['preset']!r}")
        return (
            str(meta["preset"]),
            positive_int("steps", meta["steps"]),
            positive_float("bin_ns", meta["bin_ns"]),
        )
    except (InputError, TypeError) as exc:
        raise CheckpointError(f"{model} records an unusable spike encoding: {exc}") from None


def _plot_f1(path: str, rows: dict[str, dict[str, float]]) -> None:
    from hai.shared import MissingPackageError, atomic_write

    try:
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise MissingPackageError("--plot needs matplotlib", hint="pip install 'hai-pet[demo]'") from exc
    fig = Figure(figsize=(5, 3.2))
    ax = fig.subplots()
    names = list(rows)
    ax.bar(names, [rows[n]["f1"] for n in names])
    ax.set_ylim(0, 1)
    ax.set_ylabel("pair-level F1")
    fig.tight_layout()
    with atomic_write(path, "wb") as fh:
        fig.savefig(fh, format="png", dpi=110)


def register(parser: argparse.ArgumentParser) -> None:
    """Add the ``hai pet`` subcommands to ``parser``."""
    from hai.pet.scanner import PRESETS
    from hai.pet.sorter import POLICIES

    sub = parser.add_subparsers(
        dest="pet_command", metavar="COMMAND", required=True, parser_class=OneLineArgumentParser
    )

    p = sub.add_parser("simulate", help="simulate a scanner and write GATE Hits and Singles trees")
    p.add_argument("--preset", default="clinical", choices=sorted(PRESETS), help="scanner preset")
    p.add_argument("--seconds", type=arg_positive_float, required=True, help="acquisition time (s)")
    p.add_argument("--activity-mbq", type=arg_positive_float, default=1.0, help="source activity (MBq)")
    p.add_argument("--source", default="cylinder", choices=SOURCES, help="source shape (centred)")
    p.add_argument("--no-phantom", action="store_true", help="no water phantom (no phantom scatter)")
    p.add_argument("--seed", type=arg_nonnegative_int(), default=0)
    p.add_argument("--out", required=True, help="ROOT file to write")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=_cmd_simulate)

    p = sub.add_parser("sort", help="sort the singles of a GATE ROOT file into a Coincidences tree")
    p.add_argument("file", help="GATE 9 or GATE 10 ROOT file with singles")
    p.add_argument("--tree", help="the singles tree (default: Singles)")
    p.add_argument("--window-ns", type=arg_positive_float, required=True, help="coincidence window (ns)")
    p.add_argument(
        "--policy",
        required=True,
        choices=[*POLICIES, "SCW"],
        help="GATE multiple-coincidence policy (or SCW, PETNet's sliding-window baseline)",
    )
    p.add_argument(
        "--offset-ns", type=arg_nonnegative_float, default=0.0, help="window offset (ns): delayed window"
    )
    p.add_argument("--min-sector-difference", type=arg_nonnegative_int(), default=0)
    p.add_argument(
        "--sectors", type=arg_positive_int(), help="sectors (rsectors) per ring, for --min-sector-difference"
    )
    p.add_argument("--preset", choices=sorted(PRESETS), help="take --sectors from a scanner preset")
    p.add_argument(
        "--energy-window-kev",
        type=arg_nonnegative_float,
        nargs=2,
        metavar=("LO", "HI"),
        help="keV, e.g. 350 650",
    )
    p.add_argument("--all-open", action="store_true", help="every single opens a window")
    p.add_argument("--metrics", action="store_true", help="score against the truth (eventID, comptonPhantom)")
    p.add_argument("--out", required=True, help="ROOT file to write (tree Coincidences)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=_cmd_sort)

    p = sub.add_parser("train", help="train PETNet on the singles of a (simulated) ROOT file")
    p.add_argument("file", help="ROOT file with singles and their truth (eventID, comptonPhantom)")
    p.add_argument("--preset", default="clinical", choices=sorted(PRESETS), help="scanner of the file")
    p.add_argument("--steps", type=arg_positive_int(), default=100, help="time steps per sample")
    p.add_argument("--bin-ns", type=arg_positive_float, default=0.5, help="width of one time step (ns)")
    p.add_argument("--hidden", type=arg_positive_int(), help="hidden LIF neurons (default: one per crystal)")
    p.add_argument("--geometry", action="store_true", help="geometry-aware variant (opposite-fan inputs)")
    p.add_argument(
        "--local",
        action="store_true",
        help="geometry-local variant: one small LIF network shared by all crystals (learns from few samples)",
    )
    p.add_argument(
        "--fan", type=arg_nonnegative_int(), default=20, help="half width of the facing fan (crystals)"
    )
    p.add_argument(
        "--timing-weight", type=arg_nonnegative_float, default=0.1, help="weight of the spike-timing loss"
    )
    p.add_argument("--epochs", type=arg_positive_int(), default=30)
    p.add_argument("--batch-size", type=arg_positive_int(), default=128)
    p.add_argument("--lr", type=arg_positive_float, default=5e-4)
    p.add_argument("--seed", type=arg_nonnegative_int(), default=42)
    p.add_argument("--device", default="auto")
    p.add_argument("--out", required=True, help="checkpoint to write (.safetensors)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=_cmd_train)

    p = sub.add_parser(
        "detect",
        help="find the coincidences of a ROOT file's singles with PETNet (the shipped model by default)",
    )
    p.add_argument("file", help="GATE 9 or GATE 10 ROOT file with singles")
    p.add_argument("--tree", help="the singles tree (default: Singles)")
    p.add_argument(
        "--checkpoint",
        help="PETNet checkpoint from `hai pet train` (default: the one shipped in hai-pet, clinical)",
    )
    p.add_argument(
        "--window-ns",
        type=arg_positive_float,
        help="chain PETNet's selected singles within this gap (ns; default: the checkpoint's, else 4)",
    )
    p.add_argument(
        "--tolerance-steps",
        type=arg_nonnegative_int(),
        help="predicted-spike time tolerance (default: the checkpoint's, else 2)",
    )
    p.add_argument(
        "--no-overlap",
        action="store_true",
        help="one tiling of time samples only (default: a second, shifted by half a sample, for the edges)",
    )
    p.add_argument("--metrics", action="store_true", help="score against the truth (eventID, comptonPhantom)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", required=True, help="ROOT file to write (tree Coincidences)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=_cmd_detect)

    p = sub.add_parser("evaluate", help="PETNet, a GATE sorter policy and SCW side by side (pair-level F1)")
    p.add_argument("file", help="ROOT file with singles and their truth")
    p.add_argument("--model", required=True, help="checkpoint from `hai pet train`")
    p.add_argument("--window-ns", type=arg_positive_float, required=True, help="coincidence window (ns)")
    p.add_argument("--policy", required=True, choices=POLICIES, help="GATE multiple-coincidence policy")
    p.add_argument("--min-sector-difference", type=arg_nonnegative_int(), default=0)
    p.add_argument(
        "--tolerance-steps", type=arg_nonnegative_int(), default=2, help="predicted-spike time tolerance"
    )
    p.add_argument("--plot", metavar="PNG", help="also save a bar chart of the F1 scores")
    p.add_argument("--device", default="cpu")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=_cmd_evaluate)
