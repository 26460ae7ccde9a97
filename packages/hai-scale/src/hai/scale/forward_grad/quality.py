"""How good is a forward gradient? Cosine similarity and norm ratio against the backprop gradient.

For each number of tangents k and each aggregation, :func:`approximation_quality` draws
``repeats`` sets of tangents and compares the estimate with the true gradient from
``torch.autograd``: cos(ĝ, ∇f) (1 is the right direction) and |ĝ| / |∇f| (1 is the right
length). Within one repeat the k tangents are the first k of one draw of max(k) tangents, so
the curves are nested (the projection's cosine then never decreases with k).

Compare like with like: use the model in ``eval()`` mode or without dropout, otherwise the
forward and the backward pass see different random masks. Buffers (BatchNorm statistics) are
restored after the measurement.
"""

from __future__ import annotations

import csv
import importlib.util
import io
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from hai.scale.forward_grad.aggregation import AGGREGATIONS, aggregate, check_aggregation
from hai.scale.forward_grad.directional import LossFn, directional_derivatives, trainable_parameters
from hai.scale.forward_grad.tangents import (
    Distribution,
    Scope,
    check_tangent_count,
    expected_squared_norm,
    sample_tangent_matrix,
    split_tangents,
)
from hai.shared import InputError, MissingPackageError, RngStreams, atomic_write, write_json, write_text


def cosine_similarity(estimate: torch.Tensor, reference: torch.Tensor) -> float:
    """cos∠(estimate, reference) of two tensors taken as flat vectors (0 if either is zero).

    >>> cosine_similarity(torch.tensor([1.0, 0.0]), torch.tensor([1.0, 1.0]))  # doctest: +ELLIPSIS
    0.7071...
    """
    a, b = estimate.reshape(-1).double(), reference.reshape(-1).double()
    denom = a.norm() * b.norm()
    return 0.0 if float(denom) == 0.0 else float(a @ b / denom)


def norm_ratio(estimate: torch.Tensor, reference: torch.Tensor) -> float:
    """|estimate| / |reference| (inf if the reference is zero and the estimate is not).

    >>> norm_ratio(torch.tensor([3.0, 4.0]), torch.tensor([0.0, 10.0]))
    0.5
    """
    a, b = float(estimate.double().norm()), float(reference.double().norm())
    if b == 0.0:
        return 0.0 if a == 0.0 else float("inf")
    return a / b


def true_gradient(model: nn.Module, loss_fn: LossFn, inputs: Any, targets: Any) -> torch.Tensor:
    """The backprop gradient of ``loss_fn(model(inputs), targets)`` as one flat vector (the reference)."""
    params = [p for _, p in trainable_parameters(model)]
    loss = loss_fn(model(inputs), targets)
    if not isinstance(loss, torch.Tensor) or loss.dim() != 0:
        raise InputError("the loss must be a scalar (0-d tensor)", hint="reduce it, e.g. with loss.mean()")
    grads = torch.autograd.grad(loss, params, allow_unused=True)
    return torch.cat(
        [(torch.zeros_like(p) if g is None else g).reshape(-1) for g, p in zip(grads, params, strict=True)]
    ).detach()


@dataclass
class QualityRow:
    """Statistics over the repeats for one (aggregation, k)."""

    aggregation: str
    tangents: int
    cosine_mean: float
    cosine_std: float
    norm_ratio_mean: float
    norm_ratio_std: float
    repeats: int


@dataclass
class QualityResult:
    """The approximation-quality table, plus what it was measured on."""

    rows: list[QualityRow]
    n_parameters: int
    gradient_norm: float
    loss: float
    settings: dict[str, Any] = field(default_factory=dict)

    COLUMNS: ClassVar[tuple[str, ...]] = (
        "aggregation",
        "tangents",
        "cosine_mean",
        "cosine_std",
        "norm_ratio_mean",
        "norm_ratio_std",
        "repeats",
    )

    def row(self, aggregation: str, tangents: int) -> QualityRow:
        """The row for one aggregation and k (KeyError if it was not measured)."""
        for r in self.rows:
            if r.aggregation == aggregation and r.tangents == tangents:
                return r
        raise KeyError((aggregation, tangents))

    def to_dict(self) -> dict[str, Any]:
        return {
            "n_parameters": self.n_parameters,
            "gradient_norm": self.gradient_norm,
            "loss": self.loss,
            "settings": dict(self.settings),
            "rows": [asdict(r) for r in self.rows],
        }

    def to_csv(self) -> str:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(self.COLUMNS)
        for r in self.rows:
            writer.writerow([getattr(r, c) for c in self.COLUMNS])
        return buffer.getvalue()

    def figure(self) -> Any:
        """A matplotlib figure: cosine and norm ratio against k, one line per aggregation."""
        try:  # a bare Figure renders with Agg and never touches pyplot's global state
            from matplotlib.figure import Figure as MplFigure
        except ImportError as exc:
            raise MissingPackageError(
                "plotting needs matplotlib, which is not installed", hint="pip install 'hai-scale[demo]'"
            ) from exc
        fig = MplFigure(figsize=(9, 3.6))
        ax_cos, ax_norm = fig.subplots(1, 2)
        for name in dict.fromkeys(r.aggregation for r in self.rows):
            rows = sorted((r for r in self.rows if r.aggregation == name), key=lambda r: r.tangents)
            ks = [r.tangents for r in rows]
            ax_cos.errorbar(
                ks, [r.cosine_mean for r in rows], yerr=[r.cosine_std for r in rows], marker="o", label=name
            )
            ax_norm.errorbar(
                ks,
                [r.norm_ratio_mean for r in rows],
                yerr=[r.norm_ratio_std for r in rows],
                marker="o",
                label=name,
            )
        for ax, label in ((ax_cos, "cosine similarity to ∇f"), (ax_norm, "|estimate| / |∇f|")):
            ax.set_xscale("log", base=2)
            ax.set_xlabel("tangents k")
            ax.set_ylabel(label)
            ax.grid(True, alpha=0.3)
        ax_norm.set_yscale("log")
        ax_cos.legend()
        fig.suptitle(f"forward-gradient quality, n = {self.n_parameters} parameters")
        fig.tight_layout()
        return fig

    def save(
        self, out_dir: str | os.PathLike[str], *, stem: str = "fg_quality", figure: bool | None = None
    ) -> dict[str, Path]:
        """Write ``<stem>.csv``, ``<stem>.json`` and ``<stem>.png`` to ``out_dir``; return their paths.

        The PNG needs matplotlib (``hai-scale[demo]``): with ``figure=None`` it is written when
        matplotlib is installed and left out (no "png" key) otherwise; ``figure=True`` raises
        MissingPackageError without matplotlib, ``figure=False`` never draws.
        """
        if figure is None:
            figure = importlib.util.find_spec("matplotlib") is not None
        out = Path(out_dir)
        fig = self.figure() if figure else None  # before writing anything: fail early
        paths = {
            "csv": write_text(out / f"{stem}.csv", self.to_csv()),
            "json": write_json(out / f"{stem}.json", self.to_dict()),
        }
        if fig is not None:
            png = out / f"{stem}.png"
            with atomic_write(png, "wb") as fh:
                fig.savefig(fh, format="png", dpi=110, bbox_inches="tight")
            paths["png"] = png
        return paths


def approximation_quality(
    model: nn.Module,
    loss_fn: LossFn,
    inputs: Any,
    targets: Any,
    *,
    tangents: Sequence[int] = (1, 2, 4, 8, 16, 32),
    aggregations: Sequence[str] = ("projection", "mean"),
    distribution: Distribution | str = "normal",
    scope: Scope | str = "global",
    scale: bool = False,
    repeats: int = 10,
    seed: int = 0,
    chunk_size: int | None = None,
) -> QualityResult:
    """Cosine similarity and norm ratio of forward gradients against the backprop gradient, for each k.

    >>> torch.manual_seed(0) is not None
    True
    >>> model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1)).double()
    >>> x, y = torch.randn(16, 3, dtype=torch.float64), torch.randn(16, 1, dtype=torch.float64)
    >>> res = approximation_quality(model, nn.MSELoss(), x, y, tangents=[1, 21], repeats=2)
    >>> round(res.row("projection", 21).cosine_mean, 9)     # k = n = 21: exact
    1.0
    """
    ks = sorted({check_tangent_count(k) for k in tangents})
    if not ks:
        raise InputError("give at least one number of tangents")
    names = [check_aggregation(str(a)) for a in dict.fromkeys(aggregations)]
    if not names:
        raise InputError("give at least one aggregation", hint=f"use some of {', '.join(AGGREGATIONS)}")
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise InputError(f"repeats must be an integer of at least 1, got {repeats!r}")
    params = trainable_parameters(model)
    shapes = [p.shape for _, p in params]
    numels = [p.numel() for _, p in params]
    n = sum(numels)
    dtype = params[0][1].dtype
    device = params[0][1].device
    from hai.scale.forward_grad.training import check_forward_memory

    check_forward_memory(n, max(ks), "mean", "the approximation quality", itemsize=dtype.itemsize)
    saved = {name: b.detach().clone() for name, b in model.named_buffers()}
    try:
        reference = true_gradient(model, loss_fn, inputs, targets).to(dtype)
        generator = RngStreams(seed).torch("fg-quality", device=device)
        k_max = max(ks)
        sq_norm = expected_squared_norm(numels, distribution, scope)
        samples: dict[tuple[str, int], list[tuple[float, float]]] = {(a, k): [] for a in names for k in ks}
        loss = float("nan")
        for _ in range(repeats):
            flat = sample_tangent_matrix(
                shapes,
                k_max,
                distribution=distribution,
                scope=scope,
                generator=generator,
                dtype=dtype,
                device=device,
            )
            v = split_tangents(flat, shapes)
            dd = directional_derivatives(model, loss_fn, inputs, targets, v, chunk_size=chunk_size)
            loss = float(dd.loss)
            for k in ks:
                for name in names:
                    estimate = aggregate(
                        flat[:k], dd.derivatives[:k], name, scale=scale, expected_sq_norm=sq_norm
                    )
                    samples[(name, k)].append(
                        (cosine_similarity(estimate, reference), norm_ratio(estimate, reference))
                    )
    finally:
        with torch.no_grad():
            for name, b in model.named_buffers():
                b.copy_(saved[name])
    rows = []
    for name in names:
        for k in ks:
            values = torch.tensor(samples[(name, k)], dtype=torch.float64)
            std = values.std(dim=0, correction=0) if repeats > 1 else torch.zeros(2, dtype=torch.float64)
            mean = values.mean(dim=0)
            rows.append(
                QualityRow(name, k, float(mean[0]), float(std[0]), float(mean[1]), float(std[1]), repeats)
            )
    return QualityResult(
        rows=rows,
        n_parameters=n,
        gradient_norm=float(reference.double().norm()),
        loss=loss,
        settings={
            "distribution": str(distribution),
            "scope": str(scope),
            "scale": scale,
            "repeats": repeats,
            "seed": seed,
        },
    )
