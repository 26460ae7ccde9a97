"""Target spectra for inverse design: checks, CSV files, other wavelength grids, named presets.

A target is (3, W) or (T, 3, W) — R, A, T on the model's wavelengths. :func:`check_targets`
refuses wrong shapes, NaN, values outside [0, 1] and spectra whose R + A + T is far from 1 (energy
is conserved: a design can only ever reach such targets by accident). :func:`read_target_csv`
reads ``wavelength_nm,R,A,T`` (header optional; A may be left out and is then 1 − R − T) and
interpolates it linearly onto the model's grid, refusing a file that does not cover that grid.
The presets are the demo's four classic designs: a TiO2/SiO2 Bragg mirror (its simulated
spectrum), an ideal anti-reflection coating (T = 1), a band-pass filter (T = 1 over 500–600 nm,
R = 1 elsewhere in the visible, T = 1 in the infrared) and a visible absorber (A = 1 over
400–800 nm). Hand-written: a few lines of numpy.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from hai.photonics.simulate import SimulationConfig, simulate
from hai.shared import InputError

__all__ = ["PRESET_TARGETS", "check_targets", "preset_target", "read_target_csv"]

#: the largest |R + A + T − 1| accepted in a target
CLOSURE_TOLERANCE = 0.05
BRAGG = " ".join(["TiO2_60 SiO2_90"] * 5)


def check_targets(targets: object, width: int) -> torch.Tensor:
    """(T, 3, W) float32 after checking shape, finiteness, range and R + A + T ≈ 1."""
    try:
        arr = torch.as_tensor(np.asarray(targets, dtype=np.float64))
    except (TypeError, ValueError) as exc:
        raise InputError(f"the target is not an array of numbers: {exc}") from None
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3 or arr.shape[1:] != (3, width) or arr.shape[0] == 0:
        raise InputError(
            f"targets must have shape (3, {width}) or (T, 3, {width}) — R, A, T on the model's "
            f"wavelengths — got {tuple(arr.shape)}"
        )
    if not bool(torch.isfinite(arr).all()):
        raise InputError("the target holds NaN or infinite values")
    if float(arr.min()) < -1e-6 or float(arr.max()) > 1 + 1e-6:
        raise InputError(
            f"target values must lie in [0, 1] (fractions of light), found {float(arr.min()):.3g}.."
            f"{float(arr.max()):.3g}",
            hint="percent values? divide by 100",
        )
    closure = float((arr.sum(dim=1) - 1).abs().max())
    if closure > CLOSURE_TOLERANCE:
        raise InputError(
            f"R + A + T differs from 1 by up to {closure:.3f} in the target (energy is conserved)",
            hint="give A = 1 − R − T, or leave the A column out",
        )
    return arr.clamp(0, 1).to(torch.float32)


def read_target_csv(
    path: str | os.PathLike[str], config: SimulationConfig
) -> tuple[torch.Tensor, str | None]:
    """The target (3, W) of a CSV file on ``config``'s grid, and a note if it was interpolated."""
    source = Path(path)
    if not source.is_file():
        raise InputError(f"target file {source} does not exist")
    rows: list[list[float]] = []
    header: list[str] | None = None
    with source.open(newline="", encoding="utf-8") as handle:
        for i, row in enumerate(csv.reader(handle)):
            cells = [c.strip() for c in row if c.strip()]
            if not cells or cells[0].startswith("#"):
                continue
            try:
                rows.append([float(c) for c in cells])
            except ValueError:
                if header is None and not rows:
                    header = [c.lower() for c in cells]
                    continue
                raise InputError(f"{source}, line {i + 1}: not a number in {cells}") from None
    if not rows:
        raise InputError(f"{source} holds no data rows (expected wavelength_nm,R,A,T)")
    widths = {len(r) for r in rows}
    if len(widths) != 1 or widths.pop() not in (3, 4):
        raise InputError(
            f"{source}: every row needs 4 columns (wavelength_nm,R,A,T) or 3 (wavelength_nm,R,T)"
        )
    data = np.asarray(rows)
    names = header if header is not None and len(header) == data.shape[1] else None
    if data.shape[1] == 3 or (names is not None and "a" not in names):
        wl, R, T = data[:, 0], data[:, 1], data[:, 2]
        A = 1 - R - T
    else:
        wl, R, A, T = (data[:, i] for i in range(4))
    if not np.all(np.isfinite(wl)) or np.any(np.diff(wl) <= 0):
        raise InputError(f"{source}: wavelengths must be finite and strictly increasing")
    grid = np.asarray(config.wavelengths_nm)
    note = None
    if wl.shape != grid.shape or not np.allclose(wl, grid):
        if wl[0] > grid[0] + 1e-9 or wl[-1] < grid[-1] - 1e-9:
            raise InputError(
                f"{source} covers {wl[0]:g}–{wl[-1]:g} nm but the model needs {grid[0]:g}–{grid[-1]:g} nm",
                hint="give the target over the model's whole wavelength range",
            )
        R, A, T = (np.interp(grid, wl, x) for x in (R, A, T))
        note = f"the target ({len(wl)} wavelengths) was interpolated linearly onto the model's {len(grid)}"
    return check_targets(np.stack([R, A, T]), len(grid))[0], note


def _flat(grid: np.ndarray, R: np.ndarray, A: np.ndarray) -> torch.Tensor:
    return torch.as_tensor(np.stack([R, A, 1 - R - A]), dtype=torch.float32)


def _bragg(config: SimulationConfig) -> torch.Tensor:
    return simulate(BRAGG, config).stacked()[0].clamp(0, 1).to(torch.float32)


def _anti_reflection(config: SimulationConfig) -> torch.Tensor:
    grid = np.asarray(config.wavelengths_nm)
    return _flat(grid, np.zeros_like(grid), np.zeros_like(grid))


def _band_pass(config: SimulationConfig) -> torch.Tensor:
    grid = np.asarray(config.wavelengths_nm)
    R = np.where((grid >= 400) & (grid <= 800) & ~((grid >= 500) & (grid <= 600)), 1.0, 0.0)
    return _flat(grid, R, np.zeros_like(grid))


def _absorber(config: SimulationConfig) -> torch.Tensor:
    grid = np.asarray(config.wavelengths_nm)
    return _flat(grid, np.zeros_like(grid), np.where((grid >= 400) & (grid <= 800), 1.0, 0.0))


PRESET_TARGETS: dict[str, tuple[str, Callable[[SimulationConfig], torch.Tensor]]] = {
    "bragg": ("Bragg mirror (TiO2 60 nm / SiO2 90 nm)×5", _bragg),
    "anti-reflection": ("anti-reflection: R = 0, T = 1", _anti_reflection),
    "band-pass": ("band-pass: T = 1 at 500–600 nm, R = 1 elsewhere in 400–800 nm", _band_pass),
    "absorber": ("visible absorber: A = 1 at 400–800 nm", _absorber),
}


def preset_target(name: str, config: SimulationConfig) -> tuple[torch.Tensor, str]:
    """A named target (3, W) on ``config``'s grid and its description."""
    if name not in PRESET_TARGETS:
        raise InputError(f"unknown target preset {name!r}", hint=f"presets: {', '.join(PRESET_TARGETS)}")
    title, make = PRESET_TARGETS[name]
    return make(config), title
