"""A rank of the 2-process exactness tests (run as a script by test_scale_bnn_parallel.py and
test_scale_bnn_regression.py, through :func:`spawn`).

``python scale_dist_worker.py RANK WORLD INIT_FILE OUT_DIR [SUITE]``: joins a gloo group through a
file (no port race), runs the checks of the suite (:func:`run_cases` by default, or
:func:`run_regression_cases`) and writes ``OUT_DIR/rankR.pt``. The same functions run in the
test process without a group, as the W = 1 reference.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from hai.scale.augment import Augmentation, augmentation_generator
from hai.scale.bnn import ELBOLoss, PredictiveLoss, bayesian_layers, to_bayesian, weight_sample
from hai.scale.data import synthetic_regression
from hai.scale.models import small_cnn
from hai.scale.parallel import BNNConfig, SamplingParallel, build_loss, build_model, train_bnn
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


# (name, mode, group size, estimator, loss) of the regression step, through train_bnn's own builders
REGRESSION_CASES: list[tuple[str, str, int | None, str, str]] = [
    ("regression-sample", "sample", None, "reparam", "elbo"),
    ("regression-sample-local", "sample", None, "local", "elbo"),
    ("regression-data", "data", None, "flipout", "elbo"),
    ("regression-hybrid-g2", "hybrid", 2, "reparam", "elbo"),
    ("regression-predictive-sample", "sample", None, "reparam", "predictive"),
]


def run_regression_cases() -> dict[str, Any]:
    """One Gaussian-likelihood step per case (loss, gradients) and a short train_bnn run (metrics)."""
    parallel = dist.is_initialized()
    data = synthetic_regression(64, noise_std=0.1, seed=SEED, dtype=torch.float64, test_noise=True)
    x, y = data.x_train[:B], data.y_train[:B]
    out: dict[str, Any] = {}
    for name, mode, group, estimator, loss in REGRESSION_CASES:
        config = BNNConfig(
            data="regression",
            hidden=(8, 8),
            mode=mode if parallel else "local",
            samples=S,
            loss=loss,
            group_size=group,
            batch_size=B,
            posterior_std=0.05,
            kl_weight=0.5,
            estimator=estimator,
            seed=SEED,
            dtype="float64",
        )
        model = build_model(config, data).double()
        engine = SamplingParallel(
            model,
            build_loss(config, data),
            mode=config.mode,
            samples=S,
            batch_size=B,
            group_size=group,
            seed=SEED,
        )
        loss_value = float(engine.forward_backward(x, y, step=STEP))
        grads = {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}
        outputs = engine.predict_outputs(data.x_test, samples=5, n_outputs=1, key=1)
        out[name] = {
            "loss": loss_value,
            "grads": grads,
            "outputs": outputs,
            "samples": list(engine.workload.sample_ids),
        }
    config = BNNConfig(
        data="regression",
        hidden=(8,),
        mode="sample" if parallel else "local",
        samples=S,
        batch_size=32,
        epochs=2,
        eval_samples=6,
        posterior_std=0.05,
        seed=SEED,
        dtype="float64",
        noise_std=0.15,
    )
    result = train_bnn(config, data=data).to_dict()
    out["train"] = {k: result[k] for k in ("loss", "nll", "rmse", "coverage", "std_in_data", "std_in_gap")}
    out["train"]["history"] = result["history"]
    out["train"]["world_size"] = result["world_size"]
    return out


SUITES = {"exactness": run_cases, "regression": run_regression_cases}


def spawn(world: int, out: Path, suite: str = "exactness", timeout_s: float = 150) -> list[dict[str, Any]]:
    """Run this script on ``world`` processes (gloo, file:// rendezvous); their results."""
    init = out / "init"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    procs = [
        subprocess.Popen(
            [sys.executable, __file__, str(r), str(world), str(init), str(out), suite],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for r in range(world)
    ]
    logs = []
    try:
        for p in procs:
            logs.append(p.communicate(timeout=timeout_s)[0])
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    assert all(p.returncode == 0 for p in procs), "\n".join(logs)
    return [torch.load(out / f"rank{r}.pt", weights_only=False) for r in range(world)]


def main() -> None:
    rank, world, init_file, out_dir = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], Path(sys.argv[4])
    suite = SUITES[sys.argv[5] if len(sys.argv) > 5 else "exactness"]
    torch.set_num_threads(1)
    dist.init_process_group(
        "gloo", init_method=f"file://{init_file}", rank=rank, world_size=world, timeout=timedelta(seconds=60)
    )
    try:
        torch.save(suite(), out_dir / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
