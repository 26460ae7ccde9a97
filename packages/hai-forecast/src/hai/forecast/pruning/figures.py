"""The pruning study's figures: test loss vs sparsity per model, FLOPs vs measured latency.

Drawn with matplotlib (the ``demo`` extra) when it is installed, written atomically as PNG;
without matplotlib no figure is drawn and the table stays the result.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pandas as pd  # type: ignore[import-untyped]

from hai.shared import atomic_path


def study_figures(table: pd.DataFrame, out: Path) -> list[Path]:
    """``loss_vs_sparsity.png`` and ``flops_vs_latency.png`` in ``out`` (none without matplotlib)."""
    if importlib.util.find_spec("matplotlib") is None or table.empty or "mse_pruned" not in table:
        return []
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = table[table["status"] == "ok"]
    if ok.empty:
        return []
    paths = []
    methods = sorted(ok["method"].unique())
    fig, axes = plt.subplots(1, len(methods), figsize=(5.5 * len(methods), 4), squeeze=False)
    for ax, method in zip(axes[0], methods, strict=True):
        part = ok[ok["method"] == method]
        for i, (model, rows) in enumerate(part.groupby("model")):
            rows = rows.sort_values("sparsity")
            color = f"C{i}"
            ax.plot(rows["sparsity"], rows["mse_finetuned"], "o-", color=color, label=f"{model} fine-tuned")
            ax.plot(rows["sparsity"], rows["mse_pruned"], "x--", color=color, label=f"{model} pruned")
        naive = part["mse_seasonal_naive"].iloc[0]
        ax.axhline(naive, color="grey", lw=0.8, ls=":", label="seasonal naive")
        ax.set_yscale("log")
        ax.set_xlabel("sparsity")
        ax.set_ylabel("test MSE (scaled)")
        ax.set_title(method)
        ax.legend(fontsize=7)
    fig.tight_layout()
    path = out / "loss_vs_sparsity.png"
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
    paths.append(path)
    fig, ax = plt.subplots(figsize=(5.5, 4))
    for i, (key, rows) in enumerate(ok.groupby(["model", "method"])):
        ax.plot(rows["macs"], rows["latency_s"] * 1e3, "o", color=f"C{i}", label=" ".join(key))
    ax.set_xscale("log")
    ax.set_xlabel("MACs per forward (FlopCounterMode)")
    ax.set_ylabel("CPU latency per batch (ms, median)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    path = out / "flops_vs_latency.png"
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
    paths.append(path)
    return paths
