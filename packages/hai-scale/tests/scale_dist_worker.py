"""A rank of the 2-process exactness tests (run as a script by test_scale_bnn_parallel.py).

``python scale_dist_worker.py RANK WORLD INIT_FILE OUT_DIR``: joins a gloo group through a
file (no port race), runs the checks of :func:`run_cases` and writes ``OUT_DIR/rankR.pt``.
The same :func:`run_cases` runs in the test process without a group, as the W = 1 reference.
"""

from __future__ import annotations

import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from hai.scale.augment import Augmentation, augmentation_generator
from hai.scale.bnn import ELBOLoss, PredictiveLoss, bayesian_layers, to_bayesian, weight_sample
from hai.scale.models import small_cnn
from hai.scale.parallel import SamplingParallel
from hai.shared import InputError, RngStreams

# (name, mode, group size, estimator, augment per, loss)
CASES: list[tuple[str, str, int | None, str, str, type[ELBOLoss] | type[PredictiveLoss]]] = [
    ("sample", "sample", None, "reparam", "sample", ELBOLoss),
    ("sample-flipout", "sample", None, "flipout", "sample", ELBOLoss),
    ("data", "data", None, "flipout", "step", ELBOLoss),
    ("hybrid-g1", "hybrid", 1, "local", "sample", ELBOLoss),
    ("hybrid-g2", "hybrid", 2, "reparam", "sample", ELBOLoss),
    ("predictive-sample", "sample", None, "reparam", "sample", PredictiveLoss),
    ("predictive-data", "data", None, "flipout", "step", PredictiveLoss),
    ("predictive-hybrid-g2", "hybrid", 2, "local", "sample", PredictiveLoss),
]
S, B, N, SEED, STEP = 4, 8, 100, 3, 7


def batch() -> tuple[torch.Tensor, torch.Tensor]:
    gen = RngStreams(SEED).torch("test-batch")
    x = torch.randn(B, 64, generator=gen, dtype=torch.float64)
    y = torch.randint(0, 3, (B,), generator=gen)
    return x, y


def make_model(estimator: str) -> torch.nn.Module:
    torch.manual_seed(0)
    base = small_cnn(3, (8, 8), channels=(2, 3)).double()
    return to_bayesian(base, posterior_std=0.05, estimator=estimator, inplace=True)


def run_cases() -> dict[str, Any]:
    out: dict[str, Any] = {"errors": {}}
    for label, kwargs in {
        "not-divisible": {"mode": "sample", "samples": 3},
        "more-ranks": {"mode": "sample", "samples": 1},
        "unknown-mode": {"mode": "bogus", "samples": 4},
    }.items():
        try:
            SamplingParallel(make_model("reparam"), ELBOLoss(N), batch_size=B, **kwargs)  # type: ignore[arg-type]
            out["errors"][label] = None
        except InputError as exc:
            out["errors"][label] = str(exc)
    x, y = batch()
    aug = Augmentation(image_shape=(8, 8), noise_std=0.05)
    for name, mode, group, estimator, per, loss_cls in CASES:
        if dist.is_initialized() is False:
            mode = "local"
        model = make_model(estimator)
        engine = SamplingParallel(
            model,
            loss_cls(N, kl_weight=0.5),
            mode=mode,
            samples=S,
            batch_size=B,
            group_size=group,
            seed=SEED,
            augmentation=aug,
            augment_per=per,
        )
        loss = float(engine.forward_backward(x, y, step=STEP))
        grads = {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}
        probs = engine.predict_proba(x, samples=5, n_classes=3, key=1)
        wl = engine.workload
        first = wl.sample_start
        layer = bayesian_layers(model)[0]
        with weight_sample(model, seed=SEED, step=STEP, sample=first):
            w, _ = layer.sample_weight()
        gen = augmentation_generator(SEED, STEP, first)
        out[name] = {
            "loss": loss,
            "grads": grads,
            "probs": probs,
            "samples": list(wl.sample_ids),
            "rows": (wl.row_start, wl.row_stop),
            "batch": x[wl.rows].clone(),
            "augmented": aug(x, gen),
            "weight": w.detach().clone(),
        }
    return out


def main() -> None:
    rank, world, init_file, out_dir = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], Path(sys.argv[4])
    torch.set_num_threads(1)
    dist.init_process_group(
        "gloo", init_method=f"file://{init_file}", rank=rank, world_size=world, timeout=timedelta(seconds=60)
    )
    try:
        torch.save(run_cases(), out_dir / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
