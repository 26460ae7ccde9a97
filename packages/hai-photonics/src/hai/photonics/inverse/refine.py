"""Refinement beyond the reference: optimise a design's layer thicknesses continuously through
the differentiable transfer-matrix method, materials and order fixed.

Adam on the thicknesses (nm) minimises the spectral MAE over R, A, T (OptoLlama's score) through
:func:`hai.photonics.simulate._run`, which is differentiable in thickness; thicknesses stay inside
the vocabulary's range and the best iterate of each stack is kept, so refinement never makes a
design worse. With ``snap`` the result is rounded to the vocabulary's grid and kept only where the
snapped stack still beats the original (the result is then a token sequence again). This is the
local polish that needle/gradual-evolution optimisers do in thin-film practice, started from the
model's design instead of from scratch. Hand-written: a dozen lines around hai's own TMM.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from hai.photonics.simulate import SimulationConfig, _run
from hai.photonics.stacks import Layer, Stack, Vocabulary
from hai.shared import InputError

__all__ = ["Refinement", "refine"]


@dataclass
class Refinement:
    """Refined stacks, their thicknesses (T, L; 0 past the stack) and the MAE before and after."""

    stacks: list[Stack]
    thickness_nm: torch.Tensor
    mae_before: torch.Tensor
    mae_after: torch.Tensor


def _mae(
    material: torch.Tensor,
    thick: torch.Tensor,
    targets: torch.Tensor,
    vocab: Vocabulary,
    config: SimulationConfig,
) -> torch.Tensor:
    spectra = _run(
        material, thick, list(vocab.materials), config, torch.complex128, torch.device("cpu"), 4096
    )
    return (spectra.stacked().clamp(0, 1) - targets).abs().mean(dim=(1, 2))


def refine(
    ids: torch.Tensor,
    targets: torch.Tensor,
    vocab: Vocabulary,
    config: SimulationConfig,
    *,
    iterations: int = 100,
    lr: float = 3.0,
    snap: bool = False,
) -> Refinement:
    """Refine the designs ``ids`` (T, L) for ``targets`` (T, 3, W)."""
    if ids.ndim != 2 or targets.ndim != 3 or ids.shape[0] != targets.shape[0]:
        raise InputError("refine needs ids (T, L) and targets (T, 3, W) with the same T")
    if iterations < 0:
        raise InputError("iterations must be >= 0")
    after_eos = torch.cumsum(ids == vocab.eos_id, dim=1) > 0
    material = torch.as_tensor(vocab.material_of_id)[ids].clone()
    material[after_eos] = -1
    if bool(((material < 0) & ~after_eos).any()):
        raise InputError("refine needs finished designs (layer tokens, then <EOS>)")
    start = torch.nan_to_num(torch.as_tensor(vocab.thickness_of_id)[ids], nan=0.0)
    start[after_eos] = 0.0
    target = targets.to(torch.float64)
    lo, hi = float(min(vocab.thicknesses_nm)), float(max(vocab.thicknesses_nm))
    layer = material >= 0
    thick = start.clone().requires_grad_(True)
    opt = torch.optim.Adam([thick], lr=lr)
    with torch.no_grad():
        before = _mae(material, start, target, vocab, config)
    best, best_thick = before.clone(), start.clone()
    for _ in range(iterations):
        mae = _mae(material, thick, target, vocab, config)
        with torch.no_grad():
            better = mae < best
            best = torch.where(better, mae, best)
            best_thick[better] = thick.detach()[better]
        opt.zero_grad()
        mae.sum().backward()
        opt.step()
        with torch.no_grad():
            thick.clamp_(lo, hi)
            thick[~layer] = 0.0
    with torch.no_grad():
        final = _mae(material, thick, target, vocab, config)
        better = final < best
        best = torch.where(better, final, best)
        best_thick[better] = thick.detach()[better]
        if snap:
            grid = torch.as_tensor(vocab.thicknesses_nm, dtype=torch.float64)
            snapped = grid[(best_thick[..., None] - grid).abs().argmin(dim=-1)]
            snapped[~layer] = 0.0
            snapped_mae = _mae(material, snapped, target, vocab, config)
            keep = snapped_mae < before
            best_thick = torch.where(keep[:, None], snapped, start)
            best = torch.where(keep, snapped_mae, before)
    stacks = []
    for row in range(ids.shape[0]):
        layers = [
            Layer(vocab.materials[int(m)], float(np.round(float(d), 3)))
            for m, d in zip(material[row].tolist(), best_thick[row].tolist(), strict=True)
            if m >= 0
        ]
        stacks.append(Stack(tuple(layers)))
    return Refinement(stacks=stacks, thickness_nm=best_thick, mae_before=before, mae_after=best)
