"""``hai photonics ...``: simulate stacks, generate data sets, run the template baseline, evaluate.

Thin: each handler parses, calls the public API and prints (``--json`` for machines).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import torch

from hai.shared import InputError, atomic_write
from hai.shared.checks import arg_finite_float, arg_nonnegative_int, arg_positive_int
from hai.shared.cli import OneLineArgumentParser, print_json
from hai.shared.files import write_text


def _preset_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--preset", default="optollama", choices=["optollama", "optogpt"], help="simulation preset"
    )


def _load_targets(path: str, width: int | None = None) -> torch.Tensor:
    """Target spectra (T, 3, W) from a data set folder or a safetensors file with 'spectra'.

    Only the 'spectra' tensor is read (safetensors: nothing is executed or unpickled); its dtype,
    shape (W = ``width`` wavelengths when given) and values (finite, in [0, 1]) are checked, and
    errors name the file and the row.
    """
    from hai.photonics.dataset import check_spectra, load_dataset

    source = Path(path)
    if source.is_dir():
        return check_spectra(load_dataset(source).spectra, str(source), width=width)
    if not source.is_file():
        raise InputError(
            f"targets {source} do not exist", hint="give a data set folder or a .safetensors file"
        )

    try:
        from safetensors import safe_open

        with safe_open(str(source), framework="pt") as fh:
            names = list(fh.keys())
            spectra = fh.get_tensor("spectra") if "spectra" in names else None
    except Exception as exc:  # safetensors raises its own error types for corrupt files
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(
            f"{source} is not a readable safetensors file ({reason})",
            hint="targets are a data set folder or a .safetensors file with a 'spectra' tensor",
        ) from None
    if spectra is None:
        raise InputError(
            f"{source} has no tensor named 'spectra'", hint="expected spectra of shape (T, 3, W)"
        )
    if spectra.ndim == 2:
        spectra = spectra[None]
    return check_spectra(spectra, str(source), width=width)


def _load_designs(path: str) -> list[str]:
    """Designs, one stack per line (``#`` comments), or a JSON list / ``{"designs": [...]}``."""
    source = Path(path)
    if source.is_dir():
        raise InputError(f"designs file {source} is a folder", hint="give a file with one stack per line")
    if not source.is_file():
        raise InputError(f"designs file {source} does not exist")
    try:
        text = source.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise InputError(f"designs file {source} is not a UTF-8 text file") from None
    if source.suffix == ".json":
        try:
            data = json.loads(text)
        except (json.JSONDecodeError, RecursionError) as exc:
            reason = exc.msg if isinstance(exc, json.JSONDecodeError) else "nested too deeply"
            raise InputError(f"designs file {source} is not valid JSON ({reason})") from None
        designs = data.get("designs") if isinstance(data, dict) else data
        if not isinstance(designs, list) or not all(isinstance(d, str) for d in designs):
            raise InputError(
                f'designs file {source} must hold a JSON list of stack strings or {{"designs": [...]}}'
            )
        return list(designs)
    return [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]


def _cmd_simulate(args: argparse.Namespace) -> int:
    from hai.photonics.simulate import SimulationConfig, get_config, simulate
    from hai.photonics.stacks import Stack

    preset = get_config(args.preset)
    config = SimulationConfig(**{**preset.to_dict(), "angle_deg": args.angle, "pol": args.pol})
    stack = Stack.parse(args.stack)
    spectra = simulate(stack, config)
    wl = spectra.wavelengths_nm.tolist()
    R, A, T = (x[0].tolist() for x in (spectra.R, spectra.A, spectra.T))
    if args.plot:
        _plot_spectrum(args.plot, wl, R, A, T, str(stack))
    if args.json:
        print_json(
            {"stack": str(stack), "config": config.to_dict(), "wavelength_nm": wl, "R": R, "A": A, "T": T}
        )
        return 0
    print(f"stack: {stack}  ({config.name}: angle {config.angle_deg:g} deg, pol {config.pol})")
    print(f"{'wavelength_nm':>13} {'R':>8} {'A':>8} {'T':>8}")
    for w, r, a, t in zip(wl, R, A, T, strict=True):
        print(f"{w:13.1f} {r:8.5f} {a:8.5f} {t:8.5f}")
    return 0


def _plot_spectrum(
    path: str, wl: list[float], R: list[float], A: list[float], T: list[float], title: str
) -> None:
    from hai.shared import MissingPackageError

    try:
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise MissingPackageError(
            "--plot needs matplotlib", hint="pip install 'hai-photonics[demo]'"
        ) from exc
    fig = Figure(figsize=(6, 3.5))
    ax = fig.subplots()
    for label, values in (("R", R), ("A", A), ("T", T)):
        ax.plot(wl, values, label=label)
    ax.set_xlabel("wavelength (nm)")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title(title, fontsize=9)
    ax.legend()
    _save_png(fig, path)


def _save_png(fig: Any, path: str) -> None:
    with atomic_write(path, "wb") as fh:
        fig.savefig(fh, format="png", dpi=110, bbox_inches="tight")


def _cmd_dataset(args: argparse.Namespace) -> int:
    from hai.photonics.dataset import generate_dataset

    info = generate_dataset(
        args.out,
        args.n,
        seed=args.seed,
        config=args.preset,
        shard_size=args.shard_size,
        device=args.device,
        dtype=torch.complex64 if args.precision == "single" else torch.complex128,
    )
    result = {
        "path": str(info.path),
        "n": info.n,
        "shards": info.shards,
        "generated_shards": info.generated_shards,
        "kept_shards": info.kept_shards,
        "wall_s": info.wall_s,
        "stacks_per_s": info.stacks_per_s,
    }
    if args.json:
        print_json(result)
    else:
        rate = f"{info.stacks_per_s:.0f} stacks/s" if info.stacks_per_s else "nothing left to do"
        print(f"{info.n} stacks in {info.shards} shards at {info.path} ({info.kept_shards} kept, {rate})")
    return 0


def _cmd_baseline(args: argparse.Namespace) -> int:
    from hai.photonics.baseline import TemplateBaseline
    from hai.photonics.dataset import load_dataset

    library = load_dataset(args.library)
    targets = _load_targets(args.targets, len(library.config.wavelengths_nm))
    model = TemplateBaseline.from_dataset(library, device=args.device)
    match = model.match(targets)
    designs = [str(s) for s in library.vocab.decode_batch(library.tokens[match.index])]
    result: dict[str, Any] = {
        "library": str(args.library),
        "library_size": len(library),
        "designs": designs,
        "library_index": match.index.tolist(),
        "library_mae": match.mae.tolist(),
    }
    if args.out:
        write_text(args.out, "\n".join(designs) + "\n")
        result["out"] = str(args.out)
    if args.json:
        print_json(result)
    else:
        for i, (design, mae) in enumerate(zip(designs, match.mae.tolist(), strict=True)):
            print(f"target {i}: {design}  (library MAE {mae:.4f})")
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from hai.photonics.evaluate import evaluate, plot_designs
    from hai.photonics.simulate import get_config

    targets = _load_targets(args.targets, len(get_config(args.preset).wavelengths_nm))
    designs = _load_designs(args.designs)
    evaluation = evaluate(targets, designs, args.preset, device=args.device)
    if args.plot:
        _save_png(plot_designs(evaluation), args.plot)
    if args.json:
        print_json(evaluation.to_dict())
    else:
        for i, (design, mae) in enumerate(zip(evaluation.designs, evaluation.mae.tolist(), strict=True)):
            print(f"target {i}: MAE {mae:.4f}  {design}")
        print(f"mean MAE over {len(evaluation.designs)} targets: {evaluation.mae_overall:.4f}")
    return 0


def register(parser: argparse.ArgumentParser) -> None:
    """Add the ``hai photonics`` subcommands to ``parser``."""
    sub = parser.add_subparsers(
        dest="photonics_command", metavar="COMMAND", required=True, parser_class=OneLineArgumentParser
    )

    p = sub.add_parser("simulate", help="R, A, T of a stack such as 'TiO2_60 SiO2_100'")
    p.add_argument("stack", help="layers from the top, as MATERIAL_THICKNESS tokens")
    _preset_option(p)
    p.add_argument(
        "--angle", type=arg_finite_float, default=0.0, help="angle of incidence in degrees, in [0, 90)"
    )
    p.add_argument("--pol", default="s", help="s, p or u (unpolarised)")
    p.add_argument("--plot", metavar="PNG", help="also save a plot of the spectrum")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=_cmd_simulate)

    p = sub.add_parser("dataset", help="random stacks and their spectra as safetensors shards (resumable)")
    p.add_argument("--n", type=arg_positive_int(), required=True, help="number of stacks")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--seed", type=arg_nonnegative_int(), default=0)
    _preset_option(p)
    p.add_argument("--shard-size", type=arg_positive_int(), default=100_000)
    p.add_argument(
        "--precision",
        default="double",
        choices=["double", "single"],
        help="simulate in complex128 (exact) or complex64 (faster; errors ~1e-5, below float16 storage)",
    )
    p.add_argument("--device", default="cpu")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=_cmd_dataset)

    p = sub.add_parser("baseline", help="template matching: the nearest library spectrum for each target")
    p.add_argument("--library", required=True, help="a data set folder (from 'hai photonics dataset')")
    p.add_argument("--targets", required=True, help="a data set folder or a .safetensors file with 'spectra'")
    p.add_argument("--out", help="write the designs here, one stack per line")
    p.add_argument("--device", default="cpu")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=_cmd_baseline)

    p = sub.add_parser("evaluate", help="re-simulate designs and report their MAE against the targets")
    p.add_argument("--targets", required=True, help="a data set folder or a .safetensors file with 'spectra'")
    p.add_argument("--designs", required=True, help="one stack per line (or a JSON list)")
    _preset_option(p)
    p.add_argument("--plot", metavar="PNG", help="save target-versus-design plots")
    p.add_argument("--device", default="cpu")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=_cmd_evaluate)

    from hai.photonics.inverse.cli import add_commands as add_inverse_commands

    add_inverse_commands(sub)
