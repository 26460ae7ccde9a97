"""hai-photonics' part of ``hai demo``: template-baseline designs for two classic targets, then
inverse design with the shipped OptoLlama and OptoGPT (:mod:`hai.photonics.inverse.demo`).

Generates a small library of random stacks on glass (OptoLlama's wavelengths, 300–2000 nm in
10 nm steps, light from air into the glass), then asks the template baseline for (1) the
spectrum of a 5-pair TiO2/SiO2 Bragg mirror and (2) an ideal anti-reflection coating
(R = 0, A = 0, T = 1 everywhere), re-simulates the designs and reports their mean absolute
error, with plots of target versus design. The inverse part designs a Bragg mirror, an
anti-reflection coating, a band-pass filter and an absorber with all three designers (best of 10).
About a minute on 2 CPU cores.
"""

from __future__ import annotations

import time

import torch

from hai.photonics.baseline import TemplateBaseline
from hai.photonics.dataset import generate_dataset, load_dataset
from hai.photonics.evaluate import evaluate, plot_designs
from hai.photonics.simulate import OPTOLLAMA, SimulationConfig, simulate
from hai.photonics.stacks import Stack
from hai.shared import DemoContext, Figure, Section, Table, resolve_device

LIBRARY_SIZE = 4000
BRAGG = " ".join(["TiO2_60 SiO2_90"] * 5)
#: OptoLlama's wavelengths, light from air into glass (the stack coats the glass).
ON_GLASS = SimulationConfig(wavelengths_nm=OPTOLLAMA.wavelengths_nm, exit="Glass", name="on-glass")


def run(context: DemoContext) -> Section:
    """Run the demo in ``context.workdir`` and return its report section."""
    device = resolve_device(context.device)
    start = time.perf_counter()
    info = generate_dataset(
        context.workdir / "library",
        LIBRARY_SIZE,
        seed=context.seed,
        shard_size=LIBRARY_SIZE,
        config=ON_GLASS,
        device=device,
        progress_bar=False,
    )
    library = load_dataset(info.path)
    library_s = time.perf_counter() - start

    bragg = simulate(BRAGG, ON_GLASS).stacked()[0]
    width = len(ON_GLASS.wavelengths_nm)
    ideal_ar = torch.stack([torch.zeros(width), torch.zeros(width), torch.ones(width)]).to(torch.float64)
    targets = torch.stack([bragg, ideal_ar])
    names = ["Bragg mirror (TiO2/SiO2)×5", "anti-reflection: R = 0, T = 1"]

    model = TemplateBaseline.from_dataset(library, device=device)
    designs = model.predict_stacks(targets.to(torch.float32))
    evaluation = evaluate(targets, designs, ON_GLASS, device=device)
    figure = plot_designs(evaluation, titles=names)

    truth = simulate([BRAGG, "MgF2_10"], ON_GLASS)
    closure = float((truth.R + truth.A + truth.T - 1).abs().max())
    visible = (truth.wavelengths_nm >= 400) & (truth.wavelengths_nm <= 800)
    bare_glass_R = float(simulate(Stack(()), ON_GLASS).R[0, visible].mean())
    design_R = float(evaluation.designed[1, 0, visible].mean())
    rows: list[list[float | int | str | bool | None]] = [
        [name, str(design), round(float(mae), 5)]
        for name, design, mae in zip(names, evaluation.designs, evaluation.mae.tolist(), strict=True)
    ]
    from hai.photonics.inverse.demo import inverse_part

    inverse_metrics, inverse_figures, inverse_table, inverse_summary = inverse_part(context.seed)
    return Section(
        domain="photonics",
        title="Thin-film inverse design: template baseline, OptoGPT and OptoLlama",
        summary=(
            f"A library of {LIBRARY_SIZE} random stacks on glass (1–20 layers of 18 materials, 10–500 nm) "
            f"was simulated with the transfer-matrix method over 300–2000 nm and searched for the spectrum "
            f"nearest to each target; the designs were re-simulated and scored by mean absolute error "
            f"over R, A and T. {inverse_summary}"
        ),
        metrics={
            "library_size": LIBRARY_SIZE,
            "library_stacks_per_s": None if info.stacks_per_s is None else round(info.stacks_per_s, 1),
            "library_seconds": round(library_s, 2),
            "bragg_mae": round(float(evaluation.mae[0]), 5),
            "anti_reflection_mae": round(float(evaluation.mae[1]), 5),
            "mean_mae": round(evaluation.mae_overall, 5),
            "bragg_peak_R": round(float(bragg[0].max()), 4),
            "max_abs_R_plus_A_plus_T_minus_1": closure,
            "bare_glass_mean_R_400_800nm": round(bare_glass_R, 5),
            "anti_reflection_design_mean_R_400_800nm": round(design_R, 5),
            **{f"inverse_{key}": value for key, value in inverse_metrics.items()},
        },
        figures=[
            Figure.from_matplotlib(
                figure, "photonics-template-designs", "Targets (dashed) and template-baseline designs (solid)"
            ),
            *inverse_figures,
        ],
        tables=[
            Table(caption="Designs by the template baseline", columns=["target", "design", "MAE"], rows=rows),
            inverse_table,
        ],
    )
