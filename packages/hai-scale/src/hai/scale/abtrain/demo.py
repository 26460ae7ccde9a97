"""AB-training's part of hai-scale's demo: bytes and accuracy of AB, DDP and PowerSGD, and the
schedule as a figure (2 local gloo processes, the digits, about 20 s on 2 CPU cores)."""

from __future__ import annotations

from typing import Any

from hai.scale.abtrain.run import launch_ab
from hai.scale.abtrain.schedule import ABSchedule
from hai.scale.abtrain.trainer import ABTrainConfig
from hai.shared import Figure, Table

PHASE_COLOURS = {"warmup": "#888888", "group": "#1f77b4", "ddp": "#ff7f0e"}


def _figure(results: dict[str, list[dict[str, Any]]]) -> Any:
    from matplotlib.figure import Figure as MplFigure

    fig = MplFigure(figsize=(9, 3.4))
    ax_trace, ax_bytes = fig.subplots(1, 2, gridspec_kw={"width_ratios": [2, 1]})
    trace = results["ab"][0]["trace"]
    for phase, colour in PHASE_COLOURS.items():
        steps = [r["step"] for r in trace if r["phase"] == phase]
        ax_trace.scatter(
            steps, [r["lr"] for r in trace if r["phase"] == phase], s=6, color=colour, label=phase
        )
    for record in trace:
        if "sync" in record["events"]:
            ax_trace.axvline(record["step"], color="#2ca02c", lw=0.8)
    ax_trace.set(xlabel="step", ylabel="learning rate", title="AB schedule (green: syncs)")
    ax_trace.legend(loc="lower right", fontsize=8)
    methods = list(results)
    ax_bytes.bar(methods, [results[m][0]["comm"]["total_bytes"] / 1e6 for m in methods], color="#1f77b4")
    ax_bytes.set(ylabel="MB per rank", title="bytes to collectives")
    fig.tight_layout()
    return fig


def ab_part(seed: int = 0, *, with_figure: bool = True) -> tuple[dict[str, Any], list[Figure], Table, str]:
    """Run the three methods briefly; return metrics, figures, a table and a summary sentence."""
    schedule = ABSchedule(warmup_steps=20, steps_between_syncs=30, ddp_steps_after_sync=5, lr_rebound_steps=5)
    results: dict[str, list[dict[str, Any]]] = {}
    for method in ("ddp", "powersgd", "ab"):
        config = ABTrainConfig(
            method=method, steps=120, hidden=(128, 128), batch_size=32, schedule=schedule, seed=seed
        )
        results[method] = launch_ab(config, nproc=2, timeout_s=300)
    ddp_bytes = results["ddp"][0]["comm"]["total_bytes"]
    metrics = {
        f"ab_{m.replace('-', '_')}_{key}": value
        for m, rs in results.items()
        for key, value in (
            ("bytes_per_rank", rs[0]["comm"]["total_bytes"]),
            ("test_accuracy", rs[0]["test_accuracy"]),
        )
    }
    table = Table(
        caption="AB-training, DDP and DDP + PowerSGD (rank 4): 2 gloo processes, 120 steps, digits MLP",
        columns=["method", "bytes per rank", "vs DDP", "test accuracy"],
        rows=[
            [
                m,
                rs[0]["comm"]["total_bytes"],
                round(rs[0]["comm"]["total_bytes"] / ddp_bytes, 3),
                round(rs[0]["test_accuracy"], 4),
            ]
            for m, rs in results.items()
        ],
    )
    ab = results["ab"][0]
    summary = (
        f"AB-training handed {ab['comm']['total_bytes'] / ddp_bytes:.0%} of DDP's bytes to collectives "
        f"(test accuracy {ab['test_accuracy']:.3f} against DDP's {results['ddp'][0]['test_accuracy']:.3f})."
    )
    figures = (
        [Figure.from_matplotlib(_figure(results), "ab_training", "AB schedule and bytes")]
        if with_figure
        else []
    )
    return metrics, figures, table, summary
