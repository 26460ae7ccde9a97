"""Score designs: re-simulate each designed stack and compare its spectrum with the target.

The score is OptoLlama's ``masked_mae``: the mean absolute difference over R, A, T and all
wavelengths, per target; the overall score is its mean over targets.

>>> from hai.photonics.simulate import simulate
>>> target = simulate("TiO2_60 SiO2_100").stacked()
>>> evaluate(target, ["TiO2_60 SiO2_100"]).mae_overall < 1e-12
True
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from hai.photonics.dataset import check_spectra
from hai.photonics.simulate import SimulationConfig, get_config, simulate, simulate_ids
from hai.photonics.stacks import Stack, Vocabulary
from hai.shared import InputError, MissingPackageError

__all__ = ["Evaluation", "evaluate", "plot_designs"]


@dataclass
class Evaluation:
    """Per-target MAE (T,), its mean, and the target and designed spectra (T, 3, W)."""

    mae: torch.Tensor
    mae_overall: float
    targets: torch.Tensor
    designed: torch.Tensor
    wavelengths_nm: torch.Tensor
    designs: list[str]

    def to_dict(self) -> dict[str, Any]:
        return {
            "mae_overall": self.mae_overall,
            "mae": self.mae.tolist(),
            "designs": self.designs,
        }


def evaluate(
    targets: Any,
    designs: Sequence[Stack | str] | torch.Tensor,
    config: str | SimulationConfig | None = None,
    *,
    vocab: Vocabulary | None = None,
    device: Any = "cpu",
) -> Evaluation:
    """Re-simulate ``designs`` (stacks, token strings, or token ids with ``vocab``) and score them.

    ``targets``: spectra (T, 3, W) in the order R, A, T on the config's wavelengths.
    """
    cfg = get_config(config)
    target_t = torch.as_tensor(np.asarray(targets) if not isinstance(targets, torch.Tensor) else targets)
    if target_t.ndim == 2:
        target_t = target_t[None]
    width = len(cfg.wavelengths_nm)
    if target_t.ndim != 3 or target_t.shape[1:] != (3, width):
        raise InputError(
            f"targets must have shape (T, 3, {width}) (R, A, T on the {cfg.name} wavelengths), "
            f"got {tuple(target_t.shape)}"
        )
    check_spectra(target_t, "targets", width=width)
    if isinstance(designs, torch.Tensor):
        vocab = vocab or Vocabulary()
        spectra = simulate_ids(designs, vocab, cfg, device=device)
        names = [str(s) for s in vocab.decode_batch(designs)]
    else:
        stacks = [d if isinstance(d, Stack) else Stack.parse(d) for d in designs]
        spectra = simulate(stacks, cfg, device=device)
        names = [str(s) for s in stacks]
    if len(names) != target_t.shape[0]:
        raise InputError(f"{target_t.shape[0]} targets but {len(names)} designs: give one design per target")
    designed = spectra.stacked().clamp(0, 1).cpu()
    mae = (designed - target_t.to(torch.float64)).abs().mean(dim=(1, 2))
    return Evaluation(
        mae=mae,
        mae_overall=float(mae.mean()),
        targets=target_t.to(torch.float64),
        designed=designed,
        wavelengths_nm=spectra.wavelengths_nm.cpu(),
        designs=names,
    )


def plot_designs(evaluation: Evaluation, *, titles: Sequence[str] | None = None, max_targets: int = 4) -> Any:
    """A matplotlib figure: target (dashed) and design (solid) R, A, T for the first targets."""
    try:
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise MissingPackageError("plots need matplotlib", hint="pip install 'hai-photonics[demo]'") from exc
    count = min(max_targets, evaluation.targets.shape[0])
    fig = Figure(figsize=(4.2 * count, 3.4))
    axes = fig.subplots(1, count, squeeze=False)[0]
    wl = evaluation.wavelengths_nm.numpy()
    for i, ax in enumerate(axes):
        for c, (label, color) in enumerate(zip("RAT", ("tab:blue", "tab:red", "tab:green"), strict=True)):
            ax.plot(wl, evaluation.targets[i, c].numpy(), "--", color=color, label=f"{label} target")
            ax.plot(wl, evaluation.designed[i, c].numpy(), "-", color=color, label=f"{label} design")
        title = titles[i] if titles and i < len(titles) else f"target {i}"
        ax.set_title(f"{title}\nMAE {float(evaluation.mae[i]):.4f}", fontsize=9)
        ax.set_xlabel("wavelength (nm)")
        ax.set_ylim(-0.02, 1.02)
    axes[0].set_ylabel("fraction of light")
    axes[0].legend(fontsize=7, ncol=2)
    fig.tight_layout()
    return fig
