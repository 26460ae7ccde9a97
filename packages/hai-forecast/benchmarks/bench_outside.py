"""hai's zoo against an outside implementation: PatchTST (and Autoformer) from neuralforecast.

Trains ``hai.forecast.zoo.PatchTST`` and ``neuralforecast.models.PatchTST`` (Nixtla, 3.x; its
network is a port of the authors' ``PatchTST_backbone``) on the same series, split, scaling,
windows and training budget, and scores both on the identical test windows with
:mod:`hai.forecast.zoo.protocol` (MSE/MAE in the units of the training scaler), beside the
day-lag seasonal naive (MASE = MAE over its MAE on the same windows). ``--models autoformer``
adds the same comparison for Autoformer.

Matched:

- **data and split**: the 7:1:2 chronological split of :func:`hai.forecast.zoo.protocol.split`
  (boundaries on whole days); both fit on the first 80 % with its last eighth (the 10 %
  validation part) held out for early stopping; the training windows end before the validation
  part, the validation windows have their origin in it (neuralforecast's ``val_size`` cuts the
  same windows); test origins every ``--eval-stride`` steps from the first test step;
- **scaling**: one standard scaler per column fitted on the training 70 % (hai's own); the
  neuralforecast model is given the series already scaled with it (``scaler_type="identity"``);
- **network**: input 96, horizon 96/192, ``d_model`` (neuralforecast ``hidden_size``), heads,
  encoder layers, feed-forward width (``linear_hidden_size``), GELU, post-norm, patch length 16
  and stride 8 with end padding (12 patches), flatten head, RevIN without affine parameters
  subtracting the mean (``revin_subtract_last=False``), plain attention (``res_attention=False``),
  every dropout 0 (hai's default);
- **training**: MSE loss, Adam at a constant learning rate (``num_lr_decays=-1``), no weight
  decay; a step sees 32 windows of all ``C`` columns in hai and ``32·C`` single-column windows
  in neuralforecast (``windows_batch_size``), the same number of channel-windows; at most
  ``--epochs`` passes over hai's training windows, i.e. ``epochs × ⌈n_windows / 32⌉`` steps in
  neuralforecast; a validation check after every epoch's worth of steps, early stopping after
  ``--patience`` checks without improvement, and the weights of the best check restored at the
  end (hai does this itself; neuralforecast does not, so a Lightning callback here does);
- **channel independence**: neuralforecast's PatchTST is univariate-global (one shared network
  over all columns), which *is* PatchTST's channel-independent design, as hai's.

Not matched (not reachable through neuralforecast's API): its encoder norm is always
BatchNorm over the patch tokens (``norm="BatchNorm"`` is hard-wired; the ``batch_normalization``
flag only switches pre-norm on), hai's is LayerNorm; its position embedding is learned (uniform
±0.02 start), hai's is the fixed sinusoidal table; its patch projection has a bias, hai's has
not; its training steps draw windows at random with replacement across steps (no epochs), hai
shuffles once per epoch; the weight initialisation and random streams differ. Autoformer:
neuralforecast's is univariate-global (one column in, one out), hai's is multivariate (all
columns embedded together), and neuralforecast's takes no calendar features here (none are
given), nor does hai's: that comparison is of the same architecture under different channel
handling, not of two copies of one model.

    OMP_NUM_THREADS=1 nice -n 5 python packages/hai-forecast/benchmarks/bench_outside.py \
        --out outside-out --data simbench --horizons 96 192 --seeds 0 1 2 [--models patchtst autoformer]

Writes ``OUT/bench_outside.json`` (atomically) and prints a markdown table. Needs
``pip install neuralforecast`` (not a dependency of hai-forecast: it pulls in Ray and Lightning).
"""

from __future__ import annotations

import argparse
import copy
import importlib.util
import logging
import math
import os
import platform
import statistics
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd  # type: ignore[import-untyped]
import torch
from torch import nn

from hai.forecast.data import Scaler, as_frame
from hai.forecast.pruning.cli import load_study_data
from hai.forecast.zoo import Autoformer, PatchTST
from hai.forecast.zoo.patchtst import PatchTSTNet
from hai.forecast.zoo.protocol import TRAIN, scaled_scores, seasonal_naive, split, truth, window_origins
from hai.shared import write_json

CYCLE = 24
HISTORY = 96
BATCH = 32


def _require_neuralforecast() -> None:
    if importlib.util.find_spec("neuralforecast") is None:
        sys.exit("bench_outside: neuralforecast is not installed: pip install neuralforecast")


def _quiet() -> None:
    for name in ("pytorch_lightning", "lightning", "lightning.pytorch", "lightning_fabric", "neuralforecast"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    os.environ.setdefault("NIXTLA_ID_AS_COL", "1")


class Setup:
    """The series, the protocol split and the training scaler, shared by both implementations."""

    def __init__(self, y: Any, horizon: int, eval_stride: int) -> None:
        ps = split(y, CYCLE)
        self.frame: pd.DataFrame = ps.frame
        self.fit_part: pd.DataFrame = ps.fit_part
        self.validation_fraction = ps.validation_fraction
        self.end_val = len(ps.fit_part)
        self.end_train = round(len(self.frame) * TRAIN) // CYCLE * CYCLE
        self.horizon = horizon
        self.origins = window_origins(len(self.frame), ps.test_start, HISTORY, horizon, eval_stride)
        self.scaler = Scaler("standard").fit(self.frame.to_numpy()[: self.end_train])
        self.values = self.frame.to_numpy(dtype=np.float64)
        self.truth = truth(self.frame, self.origins, horizon)
        n_train = self.end_train - HISTORY - horizon + 1  # hai's training windows (stride 1)
        self.steps_per_epoch = math.ceil(n_train / BATCH)

    def score(self, forecast: np.ndarray) -> dict[str, float]:
        s = scaled_scores(forecast, self.truth, self.scaler.scale_)
        return {"mse": s.mse, "mae": s.mae, "n_windows": s.n_windows}


#: Changes to hai's PatchTST network that make it more like neuralforecast's (``--hai-variants``).
VARIANT_TAGS = ("batchnorm", "learned-pos", "patch-bias")


class TokenBatchNorm(nn.Module):
    """BatchNorm over the tokens' channels, ``(B, N, D)`` in and out (neuralforecast's encoder norm)."""

    def __init__(self, d_model: int) -> None:
        super().__init__()
        self.norm = nn.BatchNorm1d(d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x.transpose(1, 2)).transpose(1, 2)


def neuralforecast_like(net: PatchTSTNet, tags: tuple[str, ...]) -> PatchTSTNet:
    """``net`` with neuralforecast's choices named by ``tags`` (see :data:`VARIANT_TAGS`)."""
    embedding = net.embedding
    d_model = embedding.linear.out_features
    if "batchnorm" in tags:
        for layer in net.encoder:
            layer.norm1, layer.norm2 = TokenBatchNorm(d_model), TokenBatchNorm(d_model)
    if "learned-pos" in tags:  # a learned table, uniform ±0.02 at the start
        del embedding._buffers["positions"]
        table = torch.empty(net.n_patches, d_model).uniform_(-0.02, 0.02)
        embedding.positions = nn.Parameter(table)
    if "patch-bias" in tags:
        embedding.linear = nn.Linear(embedding.linear.in_features, d_model)
    return net


def _variant_model(tags: tuple[str, ...], **params: Any) -> PatchTST:
    class Variant(PatchTST):
        def _build_net(self) -> nn.Module:
            net = super()._build_net()
            assert isinstance(net, PatchTSTNet)
            return neuralforecast_like(net, tags)

    return Variant(**params)


def run_hai(
    name: str,
    setup: Setup,
    hp: dict[str, Any],
    seed: int,
    epochs: int,
    patience: int,
    variant: tuple[str, ...] = (),
) -> dict[str, Any]:
    common = {
        "history_cycles": HISTORY // CYCLE,
        "horizon_cycles": setup.horizon // CYCLE,
        "d_model": hp["d_model"],
        "nhead": hp["n_heads"],
        "num_encoder_layers": hp["e_layers"],
        "dim_feedforward": hp["d_ff"],
        "dropout": 0.0,
        "epochs": epochs,
        "batch_size": BATCH,
        "lr": hp["lr"],
        "patience": patience,
        "validation_fraction": setup.validation_fraction,
        "seed": seed,
        "threads": 1,
    }
    if name == "patchtst" and variant:
        model: Any = _variant_model(variant, patch_len=16, patch_stride=8, **common)
    elif name == "patchtst":
        model = PatchTST(patch_len=16, patch_stride=8, **common)
    else:
        model = Autoformer(
            num_decoder_layers=hp["d_layers"],
            factor=hp["factor"],
            moving_avg=25,
            label_len=HISTORY // 2,
            **common,
        )
    t0 = time.perf_counter()
    model.fit(setup.fit_part)
    fit_s = time.perf_counter() - t0
    if not np.allclose(model.scaler_.scale_, setup.scaler.scale_):
        raise RuntimeError("hai's scaler differs from the training-part scaler")
    forecast = model.predict_at(setup.frame, setup.origins)
    epochs_run = len(model.history_) - 1
    return {
        **setup.score(forecast),
        "fit_s": fit_s,
        "best_epoch": int(model.best_epoch_),
        "epochs_run": epochs_run,
        "steps_run": epochs_run * setup.steps_per_epoch,
        "best_step": int(model.best_epoch_) * setup.steps_per_epoch,
        "n_parameters": int(model.n_parameters_),
    }


def _best_weights_callback() -> Any:
    import pytorch_lightning as pl  # type: ignore[import-not-found, import-untyped, unused-ignore]

    class BestWeights(pl.Callback):  # type: ignore[misc, unused-ignore]
        """Keep the weights of the lowest validation loss; put them back when training ends."""

        def __init__(self) -> None:
            self.best = math.inf
            self.best_step = 0
            self.state: dict[str, torch.Tensor] | None = None
            self.checks: list[tuple[int, float]] = []

        def on_validation_end(self, trainer: Any, pl_module: Any) -> None:
            if trainer.sanity_checking or "ptl/val_loss" not in trainer.callback_metrics:
                return
            loss = float(trainer.callback_metrics["ptl/val_loss"])
            self.checks.append((int(trainer.global_step), loss))
            if loss < self.best:
                self.best, self.best_step = loss, int(trainer.global_step)
                self.state = copy.deepcopy(pl_module.state_dict())

        def on_train_end(self, trainer: Any, pl_module: Any) -> None:
            if self.state is not None:
                pl_module.load_state_dict(self.state)

    return BestWeights()


def _long(setup: Setup, stop: int) -> pd.DataFrame:
    scaled = setup.scaler.transform(setup.values[:stop])
    parts = [
        pd.DataFrame({"unique_id": str(c), "ds": setup.frame.index[:stop], "y": scaled[:, i]})
        for i, c in enumerate(setup.frame.columns)
    ]
    return pd.concat(parts, ignore_index=True)


def _nf_forward(model: Any, histories: np.ndarray) -> np.ndarray:
    """``(N, 96, C)`` scaled histories → ``(N, horizon, C)`` scaled forecasts, one column at a time."""
    N, L, C = histories.shape
    x = torch.as_tensor(histories.transpose(0, 2, 1).reshape(N * C, L, 1), dtype=torch.float32)
    model.eval()
    outs = []
    with torch.no_grad():
        for start in range(0, len(x), 2048):
            part = x[start : start + 2048]
            batch = {
                "insample_y": part,
                "insample_mask": torch.ones_like(part),
                "futr_exog": None,
                "hist_exog": None,
                "stat_exog": None,
            }
            outs.append(model.loss.domain_map(model(batch)).reshape(len(part), -1).double().numpy())
    return np.concatenate(outs).reshape(N, C, -1).transpose(0, 2, 1)


def run_neuralforecast(
    name: str, setup: Setup, hp: dict[str, Any], seed: int, epochs: int, patience: int
) -> dict[str, Any]:
    from neuralforecast import NeuralForecast  # type: ignore[import-not-found, import-untyped, unused-ignore]
    from neuralforecast.losses.pytorch import MSE  # type: ignore[import-not-found, import-untyped, unused-ignore]
    from neuralforecast.models import Autoformer as NFAutoformer  # type: ignore[import-not-found, import-untyped, unused-ignore]
    from neuralforecast.models import PatchTST as NFPatchTST  # type: ignore[import-not-found, import-untyped, unused-ignore]

    C = setup.values.shape[1]
    steps = setup.steps_per_epoch
    callback = _best_weights_callback()
    common: dict[str, Any] = {
        "h": setup.horizon,
        "input_size": HISTORY,
        "hidden_size": hp["d_model"],
        "encoder_layers": hp["e_layers"],
        "dropout": 0.0,
        "activation": "gelu",
        "loss": MSE(),
        "valid_loss": MSE(),
        "max_steps": epochs * steps,
        "learning_rate": hp["lr"],
        "num_lr_decays": -1,
        "early_stop_patience_steps": patience,
        "val_check_steps": steps,
        "batch_size": BATCH,  # series per batch: all C of them
        "windows_batch_size": BATCH * C,
        "inference_windows_batch_size": 2048,
        "scaler_type": "identity",
        "random_seed": seed,
        "callbacks": [callback],
        "accelerator": "cpu",
        "devices": 1,
        "logger": False,
        "enable_progress_bar": False,
        "enable_model_summary": False,
    }
    if name == "patchtst":
        model: Any = NFPatchTST(
            n_heads=hp["n_heads"],
            linear_hidden_size=hp["d_ff"],
            fc_dropout=0.0,
            head_dropout=0.0,
            attn_dropout=0.0,
            patch_len=16,
            stride=8,
            revin=True,
            revin_affine=False,
            revin_subtract_last=False,
            res_attention=False,
            batch_normalization=False,
            learn_pos_embed=True,
            **common,
        )
    else:
        model = NFAutoformer(
            n_head=hp["n_heads"],
            conv_hidden_size=hp["d_ff"],
            decoder_layers=hp["d_layers"],
            decoder_input_size_multiplier=0.5,
            MovingAvg_window=25,
            factor=hp["factor"],
            **common,
        )
    nf = NeuralForecast(models=[model], freq=setup.frame.index.freqstr)
    train_df = _long(setup, setup.end_val)
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    nf.fit(train_df, val_size=setup.end_val - setup.end_train)
    fit_s = time.perf_counter() - t0
    fitted = nf.models[0]
    # NeuralForecast fits deep copies of the models given to it: read the copy's callback.
    callback = next(cb for cb in fitted.trainer_kwargs["callbacks"] if hasattr(cb, "checks"))
    scaled_hist = setup.scaler.transform(np.stack([setup.values[o - HISTORY : o] for o in setup.origins]))
    scaled_fc = _nf_forward(fitted, scaled_hist)
    forecast = setup.scaler.inverse_transform(scaled_fc)
    # The direct forward agrees with neuralforecast's own predict from the first test origin.
    first = int(setup.origins[0])
    own = nf.predict(df=_long(setup, first))
    own_y = own.pivot(index="ds", columns="unique_id", values=own.columns[-1])
    own_y = own_y[[str(c) for c in setup.frame.columns]].to_numpy()
    agreement = float(np.max(np.abs(own_y - scaled_fc[0])))
    checks = getattr(callback, "checks", [])
    return {
        **setup.score(forecast),
        "fit_s": fit_s,
        "best_step": int(getattr(callback, "best_step", -1)),
        "steps_run": int(checks[-1][0]) if checks else -1,
        "validation_checks": len(checks),
        "predict_agreement_max_abs": agreement,
        "n_parameters": int(sum(p.numel() for p in fitted.parameters() if p.requires_grad)),
    }


def _mean_spread(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--data", default="simbench", help="simbench, synthetic, a dataset name or a CSV")
    parser.add_argument("--models", nargs="+", default=["patchtst"], choices=["patchtst", "autoformer"])
    parser.add_argument("--horizons", nargs="+", type=int, default=[96])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--patience", type=int, default=3)
    parser.add_argument("--eval-stride", type=int, default=1)
    parser.add_argument("--d-model", type=int, default=32)
    parser.add_argument("--n-heads", type=int, default=2)
    parser.add_argument("--e-layers", type=int, default=2)
    parser.add_argument("--d-ff", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument(
        "--hai-variants",
        nargs="*",
        default=[],
        help=f"also train hai's PatchTST changed towards neuralforecast's: tags of {', '.join(VARIANT_TAGS)} "
        "joined by '+', e.g. batchnorm learned-pos batchnorm+learned-pos+patch-bias",
    )
    args = parser.parse_args()
    _require_neuralforecast()
    _quiet()
    import neuralforecast  # type: ignore[import-not-found, import-untyped, unused-ignore]

    out = Path(args.out)
    y = as_frame(load_study_data(args.data))
    hp = {
        "d_model": args.d_model,
        "n_heads": args.n_heads,
        "e_layers": args.e_layers,
        "d_layers": 1,
        "factor": 1,
        "d_ff": args.d_ff,
        "lr": args.lr,
    }
    variants: dict[str, tuple[str, ...]] = {"hai": ()}
    for text in args.hai_variants:
        tags = tuple(t for t in text.split("+") if t)
        if not tags or any(t not in VARIANT_TAGS for t in tags):
            parser.error(f"--hai-variants {text!r}: use tags of {', '.join(VARIANT_TAGS)} joined by '+'")
        variants[f"hai[{'+'.join(tags)}]"] = tags
    impls = [*variants, "neuralforecast"]
    rows: list[dict[str, Any]] = []
    for horizon in args.horizons:
        setup = Setup(y, horizon, args.eval_stride)
        naive = seasonal_naive(setup.frame, setup.origins, horizon, CYCLE)
        naive_scores = setup.score(naive)
        for name in args.models:
            for seed in args.seeds:
                for impl in impls:
                    if impl == "neuralforecast":
                        r = run_neuralforecast(name, setup, hp, seed, args.epochs, args.patience)
                    else:
                        r = run_hai(name, setup, hp, seed, args.epochs, args.patience, variants[impl])
                    r.update(model=name, impl=impl, horizon=horizon, seed=seed)
                    r["mase"] = r["mae"] / naive_scores["mae"]
                    rows.append(r)
                    print(
                        f"{name} h={horizon} seed={seed} {impl}: MSE {r['mse']:.4f} MAE {r['mae']:.4f} "
                        f"fit {r['fit_s']:.0f}s best step {r['best_step']} of {r['steps_run']}",
                        flush=True,
                    )
        rows.append({"model": "seasonal naive (day lag)", "impl": "-", "horizon": horizon, **naive_scores})
    summary: list[dict[str, Any]] = []
    lines = [
        "| model | horizon | impl | MSE (mean ± sd) | MAE (mean ± sd) | MASE | fit s | params |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for horizon in args.horizons:
        naive_row = next(r for r in rows if r["horizon"] == horizon and r["impl"] == "-")
        for name in args.models:
            stats: dict[str, dict[str, float]] = {}
            for impl in impls:
                rs = [r for r in rows if r["model"] == name and r["impl"] == impl and r["horizon"] == horizon]
                if not rs:  # the variants are PatchTST's only
                    continue
                mse, mse_sd = _mean_spread([r["mse"] for r in rs])
                mae, mae_sd = _mean_spread([r["mae"] for r in rs])
                fit_s = statistics.fmean(r["fit_s"] for r in rs)
                stats[impl] = {"mse": mse, "mse_sd": mse_sd, "mae": mae, "mae_sd": mae_sd, "fit_s": fit_s}
                lines.append(
                    f"| {name} | {horizon} | {impl} | {mse:.4f} ± {mse_sd:.4f} | {mae:.4f} ± {mae_sd:.4f} | "
                    f"{mae / naive_row['mae']:.3f} | {fit_s:.0f} | {rs[0]['n_parameters']} |"
                )
            nf_stats = stats["neuralforecast"]
            for impl in (i for i in stats if i != "neuralforecast"):
                ratio = stats[impl]["mse"] / nf_stats["mse"]
                summary.append(
                    {
                        "model": name,
                        "horizon": horizon,
                        "impl": impl,
                        "mse_ratio_over_nf": ratio,
                        "mae_ratio_over_nf": stats[impl]["mae"] / nf_stats["mae"],
                        **{k: v for k, v in stats[impl].items()},
                        **{f"nf_{k}": v for k, v in nf_stats.items()},
                    }
                )
                lines.append(f"| {name} | {horizon} | **{impl} / nf** | **{ratio:.3f}** | | | | |")
        lines.append(
            f"| seasonal naive (day lag) | {horizon} | - | {naive_row['mse']:.4f} | {naive_row['mae']:.4f} | "
            f"1.000 | - | - |"
        )
    table = "\n".join(lines)
    print(table)
    write_json(
        out / "bench_outside.json",
        {
            "data": args.data,
            "shape": list(y.shape),
            "args": vars(args),
            "neuralforecast": neuralforecast.__version__,
            "torch": torch.__version__,
            "machine": f"{platform.machine()} {os.cpu_count()} CPUs, {platform.python_version()}",
            "rows": rows,
            "summary": summary,
            "table": table,
        },
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
