"""One training loop for OptoLlama and OptoGPT: validation split, early stopping, safetensors
checkpoints (``best`` for use, ``last`` with the optimiser state to resume), progress bars, and
data parallelism under ``torchrun`` (``torch.distributed`` already initialised: the model is
wrapped in DDP and each rank takes its slice of every global batch).

OptoLlama follows the reference recipe (``scripts/train.py``: Adam, antithetic t, β(t) = (1−ε)t²,
CE over all non-PAD positions, or MDLM's weighted loss; ``pad_loss`` — on by default, off in the
reference — also scores the PAD positions, see :mod:`hai.photonics.inverse.noise`); OptoGPT is
trained with teacher forcing and label smoothing 0.1 (``run_optogpt.py``). Both get linear warm-up
and cosine decay. Batches and noise of step ``s`` come from their own random streams (seed, s), so
a resumed run sees the same batches as an uninterrupted one. Hand-written: the loop is ~150 lines
and needs the vocabulary-aware checkpoints of :mod:`hai.photonics.inverse.checkpoints`.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from hai.photonics.dataset import Dataset
from hai.photonics.inverse.checkpoints import MODEL_TYPES, build_model, load_model, save_model
from hai.photonics.inverse.data import split
from hai.photonics.inverse.model import ModelConfig, OptoLlama
from hai.photonics.inverse.noise import LOSSES, NoiseSchedule, antithetic_t, diffusion_loss, mask_tokens
from hai.photonics.inverse.optogpt import shift_right
from hai.shared import CheckpointError, InputError, RngStreams, progress, resolve_device

__all__ = ["TrainConfig", "TrainResult", "batch_loss", "join_process_group", "train"]


@dataclass
class TrainConfig:
    """What to train and how; ``max_seconds`` stops the run (with a checkpoint) after that long."""

    model: str = "optollama"
    size: str = "small"
    steps: int = 2000
    batch_size: int = 256
    lr: float = 1e-3
    warmup: int = 100
    weight_decay: float = 0.0
    loss: str = "reference"
    pad_loss: bool = True
    label_smoothing: float = 0.1
    val_fraction: float = 0.02
    eval_every: int = 200
    patience: int = 5
    seed: int = 0
    max_seconds: float | None = None
    dropout: float = 0.0

    def __post_init__(self) -> None:
        if self.model not in MODEL_TYPES:
            raise InputError(f"unknown model {self.model!r}", hint=f"models: {', '.join(MODEL_TYPES)}")
        if self.loss not in LOSSES:
            raise InputError(f"unknown loss {self.loss!r}", hint=f"losses: {', '.join(LOSSES)}")
        for name in ("steps", "batch_size", "eval_every", "patience"):
            if int(getattr(self, name)) < 1:
                raise InputError(f"{name} must be a positive integer")
        if not 0 <= self.val_fraction < 1 or not self.lr > 0:
            raise InputError("need 0 <= val_fraction < 1 and lr > 0")


@dataclass
class TrainResult:
    """Where the checkpoints are, how far training got and how the validation loss went."""

    best_path: Path
    last_path: Path
    step: int
    best_val: float
    stopped: str
    wall_s: float
    history: list[dict[str, float]] = field(default_factory=list)


def batch_loss(
    model: torch.nn.Module,
    tokens: torch.Tensor,
    spectra: torch.Tensor,
    vocab_ids: tuple[int, int, int],
    cfg: TrainConfig,
    schedule: NoiseSchedule,
    generator: torch.Generator,
    *,
    rows: slice | None = None,
    world: int = 1,
) -> torch.Tensor:
    """The training loss of one batch; ``vocab_ids`` = (pad, mask, bos).

    ``tokens`` and ``spectra`` are the whole (global) batch: the diffusion times and masks are
    drawn for all of it, and the normaliser (the number of scored positions, or of sequences)
    is counted over all of it, so that a process of a data-parallel run that takes only
    ``rows`` returns a loss whose gradient, averaged over the ``world`` processes by DDP, is
    exactly the one-process gradient of the whole batch.
    """
    pad_id, mask_id, bos_id = vocab_ids
    rows = rows or slice(None)
    core = model.module if hasattr(model, "module") else model
    if isinstance(core, OptoLlama):
        t = antithetic_t(tokens.shape[0], schedule.eps, generator=generator)
        noisy, masked = mask_tokens(tokens, t, schedule, mask_id, generator=generator)
        logits = model(noisy[rows], t[rows].to(tokens.device), spectra[rows])
        real = torch.ones_like(tokens, dtype=torch.bool) if cfg.pad_loss else tokens != pad_id
        count = real.sum().clamp_min(1) if cfg.loss == "reference" else tokens.shape[0]
        return diffusion_loss(
            logits,
            tokens[rows],
            masked[rows],
            t[rows],
            pad_id,
            schedule=schedule,
            loss=cfg.loss,
            include_pad=cfg.pad_loss,
            normaliser=count / world,
        )
    logits = model(shift_right(tokens[rows], bos_id), spectra[rows])
    total = F.cross_entropy(
        logits.transpose(1, 2).float(),
        tokens[rows],
        ignore_index=pad_id,
        label_smoothing=cfg.label_smoothing,
        reduction="sum",
    )
    return total * world / (tokens != pad_id).sum().clamp_min(1)


def _lr_at(step: int, cfg: TrainConfig) -> float:
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    frac = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
    return cfg.lr * (0.1 + 0.45 * (1 + math.cos(math.pi * min(frac, 1.0))))


def _optim_state(opt: torch.optim.Optimizer, names: dict[int, str]) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    for group in opt.param_groups:
        for p in group["params"]:
            for key, value in opt.state.get(p, {}).items():
                out[f"{names[id(p)]}.{key}"] = torch.as_tensor(value).detach().cpu().clone()
    return out


def _load_optim(opt: torch.optim.Optimizer, state: dict[str, torch.Tensor], model: torch.nn.Module) -> None:
    for name, p in model.named_parameters():
        entry = {k.rsplit(".", 1)[1]: v for k, v in state.items() if k.rsplit(".", 1)[0] == name}
        if entry:
            opt.state[p] = {k: v.to(p.device) if k != "step" else v for k, v in entry.items()}


def _rank_world() -> tuple[int, int]:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def join_process_group(device: Any = "auto", *, timeout_s: float = 300.0) -> tuple[torch.device, bool]:
    """Under ``torchrun`` (``WORLD_SIZE`` > 1 in the environment) join the process group — nccl
    with one GPU per process (``LOCAL_RANK``), gloo on CPUs — and return this process's device
    and True; otherwise (or when a group exists already) the resolved device and False."""
    dev = resolve_device(device)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1 or not torch.distributed.is_available() or torch.distributed.is_initialized():
        return dev, False
    if dev.type == "cuda":
        dev = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(dev)
    backend = "nccl" if dev.type == "cuda" else "gloo"
    torch.distributed.init_process_group(backend, timeout=timedelta(seconds=timeout_s))
    return dev, True


def train(
    data: Dataset,
    out_dir: str | os.PathLike[str],
    cfg: TrainConfig,
    *,
    resume: bool = True,
    device: Any = "cpu",
    progress_bar: bool = True,
    stop_at: int | None = None,
) -> TrainResult:
    """Train ``cfg.model`` on ``data``; checkpoints go to ``out_dir/{best,last}.safetensors``.

    ``stop_at`` ends this call after that many steps (with a checkpoint), as an interruption would;
    the next call with ``resume`` goes on exactly where it stopped.
    """
    out = Path(out_dir)
    best_path, last_path = out / "best.safetensors", out / "last.safetensors"
    rank, world = _rank_world()
    if cfg.batch_size % world:
        raise InputError(f"batch_size {cfg.batch_size} is not divisible by the {world} processes")
    vocab = data.vocab
    model_cfg = ModelConfig.sized(
        cfg.size,
        vocab_size=len(vocab),
        seq_len=vocab.sequence_length,
        width=int(data.spectra.shape[2]),
        dropout=cfg.dropout,
    )
    schedule = NoiseSchedule()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        core = build_model(cfg.model, model_cfg).to(device)
    model: torch.nn.Module = core
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    names = {id(p): n for n, p in model.named_parameters()}
    step, best_val, bad, history = 0, float("inf"), 0, []
    if resume and last_path.is_file():
        loaded = load_model(last_path, kind=cfg.model, vocab=vocab)
        if loaded.model.config != model_cfg:
            raise CheckpointError(
                f"{last_path} holds a model of another shape", hint="use a new --out folder or the same size"
            )
        model.load_state_dict(loaded.model.state_dict())
        _load_optim(opt, loaded.optimizer, model)
        state = loaded.training
        step, best_val, bad = int(state["step"]), float(state["best_val"]), int(state["bad_evals"])
        history = list(state.get("history", []))
    if world > 1:
        # OptoGPT's blocks keep the (unused) AdaLN layers of OptoLlama's: DDP must not wait for them
        model = torch.nn.parallel.DistributedDataParallel(
            model, find_unused_parameters=not isinstance(core, OptoLlama)
        )
    train_idx, val_idx = split(len(data), cfg.val_fraction, cfg.seed)
    if len(train_idx) == 0:
        raise InputError("the data set is too small for a training split")
    streams = RngStreams(cfg.seed)
    ids3 = (vocab.pad_id, vocab.mask_id, vocab.bos_id)
    spectra_all, tokens_all = data.spectra, data.tokens
    local = cfg.batch_size // world

    def validate() -> float:
        model.eval()
        gen = streams.torch("validation")
        total, count = 0.0, 0
        with torch.no_grad():
            for s in range(0, len(val_idx), 1024):
                idx = val_idx[s : s + 1024]
                loss = batch_loss(
                    core,
                    tokens_all[idx].to(device),
                    spectra_all[idx].to(device, torch.float32),
                    ids3,
                    cfg,
                    schedule,
                    gen,
                )
                total += float(loss) * len(idx)
                count += len(idx)
        model.train()
        return total / max(count, 1)

    def save(path: Path, with_optim: bool) -> None:
        if rank != 0:
            return
        training = {
            "step": step,
            "best_val": best_val,
            "bad_evals": bad,
            "history": history,
            "config": asdict(cfg),
            "data_n": len(data),
            "data_seed": data.seed,
        }
        save_model(
            path,
            core,
            vocab,
            data.config,
            schedule=schedule,
            training=training,
            optimizer=_optim_state(opt, names) if with_optim else None,
            seed=cfg.seed,
        )

    start = time.perf_counter()
    stopped = "steps"
    bar: Any = (
        progress(total=cfg.steps, initial=step, desc=f"train {cfg.model}", unit="step")
        if (progress_bar and rank == 0)
        else None
    )
    model.train()
    try:
        while step < cfg.steps:
            gen = streams.torch("batch", step)
            pick = train_idx[torch.randint(len(train_idx), (cfg.batch_size,), generator=gen)]
            noise_gen = streams.torch("noise", step)
            for group in opt.param_groups:
                group["lr"] = _lr_at(step, cfg)
            loss = batch_loss(
                model,
                tokens_all[pick].to(device),
                spectra_all[pick].to(device, torch.float32),
                ids3,
                cfg,
                schedule,
                noise_gen,
                rows=slice(rank * local, (rank + 1) * local),
                world=world,
            )
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            step += 1
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{float(loss.detach()):.3f}")
            over_time = cfg.max_seconds is not None and time.perf_counter() - start > cfg.max_seconds
            over_time = over_time or (stop_at is not None and step >= stop_at)
            if world > 1:  # every process stops at the same step, or the others would hang
                flag = torch.tensor([float(over_time)], device=device)
                torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
                over_time = bool(flag.item() > 0)
            if step % cfg.eval_every == 0 or step == cfg.steps or over_time:
                val = validate() if len(val_idx) else float(loss.detach())
                history.append(
                    {
                        "step": step,
                        "train_loss": float(loss.detach()),
                        "val_loss": val,
                        "wall_s": time.perf_counter() - start,
                    }
                )
                if val < best_val:
                    best_val, bad = val, 0
                    save(best_path, False)
                else:
                    bad += 1
                save(last_path, True)
                if bad >= cfg.patience:
                    stopped = "early stopping"
                    break
                if over_time:
                    stopped = "time limit"
                    break
    finally:
        if bar is not None:
            bar.close()
    if not best_path.is_file() and rank == 0:
        save(best_path, False)
    return TrainResult(
        best_path=best_path,
        last_path=last_path,
        step=step,
        best_val=best_val,
        stopped=stopped,
        wall_s=time.perf_counter() - start,
        history=history,
    )
