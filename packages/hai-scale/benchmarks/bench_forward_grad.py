"""Forward gradients against backprop (the anchor), side by side in one run.

For an MLP and a small CNN on a batch of the 8x8 digits it measures, per gradient computation
(``zero_grad`` + ``loss.backward()`` for backprop, ``zero_grad`` + ``ForwardGradient(...)`` for
forward gradients; the optimizer step, identical for both, is left out):

* wall time per step (median of blocks of steps, ``hai.shared.measure``);
* peak memory per step: on CPU, the peak of the bytes held by tensors that torch's CPU allocator
  handed out during the step, over what was held when the step began, read from the allocation
  events that ``torch.profiler`` records with ``profile_memory=True`` (parameters, data and
  ``.grad`` buffers that already existed are not counted; Python objects and allocator caches
  are not counted either). On CUDA: ``torch.cuda.max_memory_allocated`` minus the allocation at
  the start. Reported as unavailable when neither can be read;
* cosine similarity of the estimate with the backprop gradient (10 tangent draws per k);

and then trains the MLP on the digits for a few epochs with projection and mean (k = 16) and
with backprop, recording the training curves. Prints a table with the ratios to backprop and
writes ``bench_forward_grad.json`` (and a PNG of the curves when matplotlib is installed) to
``--out``.

    python packages/hai-scale/benchmarks/bench_forward_grad.py --out build/bench
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from hai.scale import (
    ForwardGradient,
    ForwardGradientClassifier,
    approximation_quality,
    digits_classification,
    mlp,
    small_cnn,
    synthetic_classification,
)
from hai.shared import MissingPackageError, atomic_write, measure, resolve_device, write_json

KS = (1, 4, 16)


def peak_step_memory(step: Callable[[], Any], device: torch.device) -> int | None:
    """Peak bytes allocated by torch during one call of ``step`` beyond what was live at its start."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        start = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        step()
        torch.cuda.synchronize(device)
        return int(torch.cuda.max_memory_allocated(device) - start)
    try:
        from torch.profiler import ProfilerActivity, profile

        with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
            step()
        # Raw allocation (+bytes) and free (-bytes) events in time order; the running sum's
        # maximum is the step's peak over the memory that was live before it.
        events = [e for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"]  # type: ignore[union-attr]
    except Exception:  # the profiler's result format is not a stable API
        return None
    events.sort(key=lambda e: e.start_ns())
    current = peak = 0
    for event in events:
        if event.device_type() == torch.autograd.DeviceType.CPU:
            current += event.nbytes()
            peak = max(peak, current)
    return peak


def time_per_step(step: Callable[[], Any], device: torch.device, *, steps: int, blocks: int = 5) -> float:
    """Median over ``blocks`` of the mean wall time of ``steps`` calls, after 3 warm-up calls."""
    for _ in range(3):
        step()
    times = []
    for _ in range(blocks):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        with measure(energy=False) as cost:
            for _ in range(steps):
                step()
            if device.type == "cuda":
                torch.cuda.synchronize(device)
        times.append(cost.wall_s / steps)
    return statistics.median(times)


def bench_model(
    name: str, model: nn.Module, x: torch.Tensor, y: torch.Tensor, device: torch.device, steps: int
) -> list[dict[str, Any]]:
    model = model.to(device)
    x, y = x.to(device), y.to(device)
    loss_fn = nn.CrossEntropyLoss()
    n = sum(p.numel() for p in model.parameters())

    def backprop() -> None:
        model.zero_grad(set_to_none=True)
        loss_fn(model(x), y).backward()

    rows = [
        {
            "model": name,
            "n_parameters": n,
            "method": "backprop",
            "k": None,
            "time_s": time_per_step(backprop, device, steps=steps),
            "peak_bytes": peak_step_memory(backprop, device),
            "cosine": 1.0,
        }
    ]
    quality = approximation_quality(
        model.eval(), loss_fn, x, y, tangents=KS, aggregations=("projection", "mean"), repeats=10, seed=0
    )
    model.train()
    for aggregation in ("projection", "mean"):
        for k in KS:
            fg = ForwardGradient(model, loss_fn, tangents=k, aggregation=aggregation, seed=0)

            def forward(fg: ForwardGradient = fg) -> None:
                model.zero_grad(set_to_none=True)
                fg(x, y)

            rows.append(
                {
                    "model": name,
                    "n_parameters": n,
                    "method": f"fg-{aggregation}",
                    "k": k,
                    "time_s": time_per_step(forward, device, steps=steps),
                    "peak_bytes": peak_step_memory(forward, device),
                    "cosine": quality.row(aggregation, k).cosine_mean,
                }
            )
    anchor = rows[0]
    for row in rows:
        row["time_ratio"] = row["time_s"] / anchor["time_s"]
        row["memory_ratio"] = (
            row["peak_bytes"] / anchor["peak_bytes"]
            if row["peak_bytes"] is not None and anchor["peak_bytes"]
            else None
        )
    return rows


def training_curves(data: Any, device: torch.device, epochs: int) -> dict[str, Any]:
    settings: dict[str, Any] = {
        "hidden": (64,),
        "epochs": epochs,
        "lr": 1e-2,
        "seed": 0,
        "device": str(device),
    }
    runs = {
        "fg-projection k=16": ForwardGradientClassifier(tangents=16, aggregation="projection", **settings),
        "fg-mean k=16": ForwardGradientClassifier(tangents=16, aggregation="mean", **settings),
        "backprop": ForwardGradientClassifier(gradient="backprop", **settings),
    }
    out = {}
    for label, clf in runs.items():
        clf.fit(data.x_train, data.y_train, validation=(data.x_test, data.y_test))
        out[label] = {
            "n_parameters": clf.n_parameters_,
            "wall_s": clf.fit_cost_.wall_s,
            "history": [h.to_dict() for h in clf.history_],
            "final_train_loss": clf.loss_,
            "final_test_accuracy": clf.history_[-1].test_accuracy,
        }
    return out


def save_curve_png(curves: dict[str, Any], path: Path) -> bool:
    try:
        from matplotlib.figure import Figure
    except ImportError:
        return False
    fig = Figure(figsize=(9, 3.6))
    ax_loss, ax_acc = fig.subplots(1, 2)
    for label, run in curves.items():
        epochs = [h["epoch"] for h in run["history"]]
        ax_loss.plot(epochs, [h["train_loss"] for h in run["history"]], marker="o", label=label)
        ax_acc.plot(epochs, [h["test_accuracy"] for h in run["history"]], marker="o", label=label)
    ax_loss.set_ylabel("training loss (epoch mean)")
    ax_acc.set_ylabel("test accuracy")
    for ax in (ax_loss, ax_acc):
        ax.set_xlabel("epoch")
        ax.grid(True, alpha=0.3)
    ax_loss.legend()
    fig.tight_layout()
    with atomic_write(path, "wb") as fh:
        fig.savefig(fh, format="png", dpi=110)
    return True


def _fmt_bytes(value: int | None) -> str:
    return "n/a" if value is None else f"{value / 2**20:.2f}"


def _fmt_ratio(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="build/bench", help="folder for the JSON (default build/bench)")
    parser.add_argument("--steps", type=int, default=20, help="steps per timing block (default 20)")
    parser.add_argument("--batch-size", type=int, default=64, help="default 64")
    parser.add_argument("--epochs", type=int, default=8, help="epochs of the training curves (default 8)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto (default cpu)")
    args = parser.parse_args(argv)
    device = resolve_device(args.device)
    torch.manual_seed(0)
    try:
        data = digits_classification(seed=0)
    except MissingPackageError:
        print("scikit-learn missing: using synthetic 64-feature data instead of the digits", file=sys.stderr)
        data = synthetic_classification(1797, n_features=64, n_classes=10, seed=0)
    x, y = data.x_train[: args.batch_size], data.y_train[: args.batch_size]
    machine = f"{platform.machine()} {platform.processor() or ''}".strip()
    torch.manual_seed(0)
    rows = bench_model("MLP 64-128-128-10", mlp(64, 10, (128, 128)), x, y, device, args.steps)
    torch.manual_seed(0)
    rows += bench_model("CNN 8x8 (8,16 ch)", small_cnn(10, (8, 8)), x, y, device, args.steps)
    curves = training_curves(data, device, args.epochs)

    print(
        f"\nforward gradients vs backprop, batch {args.batch_size}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, {device}"
    )
    head = (
        f"{'model':<19} {'params':>7} {'method':<14} {'k':>3} {'ms/step':>8} {'x bp':>6} "
        f"{'peak MiB':>9} {'x bp':>6} {'cosine':>7}"
    )
    print(head)
    print("-" * len(head))
    for r in rows:
        print(
            f"{r['model']:<19} {r['n_parameters']:>7} {r['method']:<14} {r['k'] or '':>3} "
            f"{r['time_s'] * 1e3:>8.3f} {r['time_ratio']:>6.2f} {_fmt_bytes(r['peak_bytes']):>9} "
            f"{_fmt_ratio(r['memory_ratio']):>6} {r['cosine']:>7.3f}"
        )
    print(f"\ntraining the MLP (hidden 64) on {data.name}, Adam lr 0.01, batch 64, {args.epochs} epochs")
    labels = list(curves)
    print(f"{'epoch':>5} " + " ".join(f"{label + ' loss/acc':>26}" for label in labels))
    for i in range(args.epochs):
        cells = []
        for label in labels:
            h = curves[label]["history"][i]
            cells.append(f"{h['train_loss']:>19.4f} / {h['test_accuracy']:.3f}")
        print(f"{i + 1:>5} " + " ".join(cells))
    print(
        f"{'method':<20} {'params':>7} {'final train loss':>17} {'test accuracy':>14} "
        f"{'wall s':>7} {'x bp':>6}"
    )
    bp_wall = curves["backprop"]["wall_s"]
    for label, run in curves.items():
        print(
            f"{label:<20} {run['n_parameters']:>7} {run['final_train_loss']:>17.4f} "
            f"{run['final_test_accuracy']:>14.3f} {run['wall_s']:>7.2f} {run['wall_s'] / bp_wall:>6.2f}"
        )
    out = Path(args.out)
    path = write_json(
        out / "bench_forward_grad.json",
        {
            "benchmark": "forward gradients vs backprop",
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "device": str(device),
            "machine": machine,
            "python": platform.python_version(),
            "batch_size": args.batch_size,
            "memory_measure": (
                "CUDA max_memory_allocated over the step's start"
                if device.type == "cuda"
                else "peak bytes of torch CPU allocations during the step over its start (torch.profiler "
                "memory events)"
            ),
            "rows": rows,
            "training": curves,
        },
    )
    print(f"\nwrote {path}")
    if save_curve_png(curves, out / "bench_forward_grad_training.png"):
        print(f"wrote {out / 'bench_forward_grad_training.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
