"""The inverse-design part of hai-photonics' demo: template, OptoGPT and OptoLlama on four targets.

Designs a Bragg mirror, an anti-reflection coating, a band-pass filter and a visible absorber
(:mod:`hai.photonics.inverse.targets`) with the two small models shipped in the package and a
template library of random stacks, best of 10 each, re-simulated with hai's TMM (OptoLlama
preset: 300–2000 nm, air on both sides). About half a minute on 2 CPU cores.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from hai.photonics.dataset import Dataset, random_stacks
from hai.photonics.evaluate import Evaluation, plot_designs
from hai.photonics.inverse.designers import (
    OptoGPTDesigner,
    OptoLlamaDesigner,
    TemplateDesigner,
    simulate_designs,
)
from hai.photonics.inverse.targets import PRESET_TARGETS, preset_target
from hai.photonics.simulate import OPTOLLAMA, simulate_ids
from hai.photonics.stacks import Vocabulary
from hai.shared import Figure, Table

__all__ = ["inverse_part"]

LIBRARY_SIZE = 10000
K = 10


def inverse_part(seed: int) -> tuple[dict[str, Any], list[Figure], Table, str]:
    """Metrics, one figure per designer, a table of designs and a summary sentence."""
    import torch

    vocab = Vocabulary()
    ids = random_stacks(LIBRARY_SIZE, np.random.default_rng(seed), vocab)
    library = Dataset(
        simulate_ids(ids, vocab, OPTOLLAMA).stacked().clamp(0, 1).half(), ids, vocab, OPTOLLAMA, seed
    )
    names = list(PRESET_TARGETS)
    made = [preset_target(name, OPTOLLAMA) for name in names]
    targets = torch.stack([t for t, _ in made])
    titles = [title for _, title in made]
    designers = {
        "template": TemplateDesigner().fit(library),
        "optogpt": OptoGPTDesigner.shipped(seed=seed),
        "optollama": OptoLlamaDesigner.shipped(seed=seed),
    }
    metrics: dict[str, Any] = {"library_size": LIBRARY_SIZE, "k": K}
    figures: list[Figure] = []
    rows: list[list[Any]] = []
    for label, designer in designers.items():
        start = time.perf_counter()
        designs = designer.design(targets, k=K)
        seconds = time.perf_counter() - start
        metrics[f"{label}_mean_mae"] = round(float(designs.mae.mean()), 5)
        metrics[f"{label}_seconds_per_target"] = round(seconds / len(names), 3)
        metrics[f"{label}_valid_fraction"] = designs.valid_fraction
        for name, stack, mae in zip(names, designs.stacks, designs.mae.tolist(), strict=True):
            metrics[f"{label}_{name}_mae"] = round(float(mae), 5)
            rows.append([name, label, str(stack), round(float(mae), 5)])
        evaluation = Evaluation(
            mae=designs.mae,
            mae_overall=float(designs.mae.mean()),
            targets=targets.double(),
            designed=simulate_designs(designs.stacks, OPTOLLAMA),
            wavelengths_nm=OPTOLLAMA.wavelengths,
            designs=[str(s) for s in designs.stacks],
        )
        fig = plot_designs(evaluation, titles=titles)
        figures.append(
            Figure.from_matplotlib(
                fig,
                f"photonics-inverse-{label}",
                f"Targets (dashed) and {label} designs, best of {K} (solid)",
            )
        )
    table = Table(
        caption=f"Inverse designs, best of {K} re-simulated",
        columns=["target", "designer", "design", "MAE"],
        rows=rows,
    )
    best = min(("template", "optogpt", "optollama"), key=lambda d: metrics[f"{d}_mean_mae"])
    summary = (
        f"Four classic targets were designed by a template library of {LIBRARY_SIZE} random stacks, the "
        f"shipped small OptoGPT and the shipped small OptoLlama (best of {K}, re-simulated with the TMM); "
        f"mean MAE template {metrics['template_mean_mae']:.4f}, OptoGPT {metrics['optogpt_mean_mae']:.4f}, "
        f"OptoLlama {metrics['optollama_mean_mae']:.4f} (best: {best}). These targets are idealised and "
        f"partly unreachable, so their MAEs stay well above those of random targets."
    )
    return metrics, figures, table, summary
