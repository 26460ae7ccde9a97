"""The pruning part of ``hai demo``: a small pruning study on embedded synthetic data.

PatchTST and Autoformer (tiny) on a synthetic 3-column series with daily and weekly seasons
(10 weeks, hourly; input 96, horizon 24), both methods at sparsities 0, 0.5 and 0.9, two
fine-tuning epochs: the table of test MSE before and after fine-tuning, measured MACs and CPU
latency ratios, and the study's two figures. About 30 s on one CPU thread. The section is for
``hai.forecast.demo`` to append to its own (:func:`pruning_section`).
"""

from __future__ import annotations

from pathlib import Path

from hai.forecast.pruning.study import StudySpec, run_study
from hai.forecast.zoo.data import synthetic_multiseasonal
from hai.shared import DemoContext, Figure, Section, Table

DEMO_SPEC = StudySpec(
    models=("patchtst", "autoformer"),
    sparsities=(0.0, 0.5, 0.9),
    epochs=5,
    finetune_epochs=2,
    horizon_cycles=1,
    stride=2,
    latency_repeats=10,
    data="synthetic 3 x 10 weeks",
)


def pruning_section(context: DemoContext, spec: StudySpec = DEMO_SPEC, n_weeks: int = 10) -> Section:
    """Run the small study in ``context.workdir / "prune-study"`` and return its report section."""
    y = synthetic_multiseasonal(24 * 7 * n_weeks, 3, common=0.0, weekly=0.3, noise=0.2, seed=context.seed)
    result = run_study(y, Path(context.workdir) / "prune-study", spec, show_progress=False)
    ok = result.table[result.table["status"] == "ok"]
    columns = ["model", "method", "sparsity", "mse_pruned", "mse_finetuned", "macs_ratio", "latency_ratio"]
    rows = [[r[c] for c in columns] for r in ok.to_dict(orient="records")]
    figures = [
        Figure(path.stem, path.read_bytes(), caption)
        for path, caption in zip(
            result.figures,
            ["test MSE vs sparsity, pruned (dashed) and fine-tuned", "MACs vs measured CPU latency"],
            strict=False,
        )
    ]
    unstructured = ok[(ok["method"] == "unstructured") & (ok["sparsity"] == 0.5)]
    structured = ok[(ok["method"] == "structured") & (ok["sparsity"] == max(spec.sparsities))]
    summary = (
        "Magnitude pruning to 50 % sparsity and fine-tuning: test MSE "
        + ", ".join(f"{r.model} {r.mse_dense:.3f} → {r.mse_finetuned:.3f}" for r in unstructured.itertuples())
        + f". Structured pruning at {max(spec.sparsities):g}: "
        + ", ".join(
            f"{r.model} {r.macs_ratio:.2f}x fewer MACs, {r.latency_ratio:.2f}x faster"
            for r in structured.itertuples()
        )
        + " (CPU, one thread, measured)."
    )
    return Section(
        domain="forecast",
        title="Pruning transformer forecasters",
        summary=summary,
        metrics={f"{r.model}_{r.method}_{r.sparsity:g}_mse": float(r.mse_finetuned) for r in ok.itertuples()},
        figures=figures,
        tables=[Table("pruning study (test MSE in scaled units)", columns, rows)],
    )
