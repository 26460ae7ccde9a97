"""Checkpoints of the inverse-design models: safetensors weights with the model type, network
shape, vocabulary and simulation config inside, optionally the optimiser state and training
progress (to resume).

Written with :func:`hai.shared.save_checkpoint` (atomic; JSON metadata, never pickles). Loading
refuses, with a :class:`~hai.shared.CheckpointError`, files that are not hai inverse-design
checkpoints, checkpoints of the other model type, and checkpoints of another vocabulary — a
model's token ids mean nothing under a different token list. Hand-written because the check
of vocabulary and model type is specific to this package.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from hai.photonics.inverse.model import ModelConfig, OptoLlama
from hai.photonics.inverse.noise import NoiseSchedule
from hai.photonics.inverse.optogpt import OptoGPT
from hai.photonics.simulate import SimulationConfig
from hai.photonics.stacks import Vocabulary
from hai.shared import CheckpointError, InputError, load_checkpoint, save_checkpoint

__all__ = [
    "FORMAT",
    "MODEL_TYPES",
    "LoadedModel",
    "build_model",
    "load_model",
    "save_model",
    "shipped_model_path",
]

FORMAT = "hai-photonics-inverse"
FORMAT_VERSION = 1
MODEL_TYPES = ("optollama", "optogpt")
SHIPPED = "optollama-small.safetensors"
SHIPPED_OPTOGPT = "optogpt-small.safetensors"


def shipped_model_path(kind: str = "optollama") -> Path:
    """The small trained model shipped in the package (by ``benchmarks/train_shipped_model.py``)."""
    return Path(__file__).with_name(SHIPPED if kind == "optollama" else SHIPPED_OPTOGPT)


def build_model(kind: str, config: ModelConfig) -> OptoLlama | OptoGPT:
    if kind == "optollama":
        return OptoLlama(config)
    if kind == "optogpt":
        return OptoGPT(config)
    raise InputError(f"unknown model type {kind!r}", hint=f"model types: {', '.join(MODEL_TYPES)}")


@dataclass
class LoadedModel:
    """A model with everything needed to use it, and what its checkpoint recorded."""

    model: OptoLlama | OptoGPT
    vocab: Vocabulary
    simulation: SimulationConfig
    schedule: NoiseSchedule
    training: dict[str, Any] = field(default_factory=dict)
    optimizer: dict[str, torch.Tensor] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        return str(self.model.kind)


def save_model(
    path: str | os.PathLike[str],
    model: OptoLlama | OptoGPT,
    vocab: Vocabulary,
    simulation: SimulationConfig,
    *,
    schedule: NoiseSchedule | None = None,
    training: dict[str, Any] | None = None,
    optimizer: dict[str, torch.Tensor] | None = None,
    seed: int | None = None,
    half: bool = False,
) -> Path:
    """Write the model (float16 weights when ``half``) and, for resuming, the optimiser state."""
    schedule = schedule or NoiseSchedule()
    tensors: dict[str, torch.Tensor] = {}
    for name, value in model.state_dict().items():
        value = value.detach().cpu()
        tensors[f"model.{name}"] = value.half() if half and value.is_floating_point() else value.clone()
    for name, value in (optimizer or {}).items():
        tensors[f"optim.{name}"] = value.detach().cpu().clone()
    config = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "model_type": model.kind,
        "model": model.config.to_dict(),
        "vocabulary": vocab.to_dict(),
        "simulation": simulation.to_dict(),
        "schedule": {"eps": schedule.eps, "power": schedule.power},
    }
    return save_checkpoint(path, tensors, config=config, seed=seed, extra={"training": training or {}})


def load_model(
    path: str | os.PathLike[str],
    *,
    kind: str | None = None,
    vocab: Vocabulary | None = None,
    device: Any = "cpu",
) -> LoadedModel:
    """Read a checkpoint written by :func:`save_model`, refusing foreign ones."""
    source = Path(path)
    if not source.is_file():
        raise CheckpointError(f"checkpoint {source} does not exist")
    ckpt = load_checkpoint(source, framework="torch")
    cfg = ckpt.config
    if cfg.get("format") != FORMAT or int(cfg.get("format_version", 0)) > FORMAT_VERSION:
        raise CheckpointError(
            f"{source} is not a hai-photonics inverse-design checkpoint this version can read"
        )
    found = cfg.get("model_type")
    if found not in MODEL_TYPES:
        raise CheckpointError(f"{source} holds an unknown model type {found!r}")
    if kind is not None and found != kind:
        raise CheckpointError(
            f"{source} holds an {found} model, not {kind}", hint=f"use --model {found} or another checkpoint"
        )
    try:
        saved_vocab = Vocabulary.from_dict(cfg["vocabulary"])
        model_cfg = ModelConfig.from_dict(cfg["model"])
        simulation = SimulationConfig.from_dict(cfg["simulation"])
        schedule = NoiseSchedule(**cfg.get("schedule", {}))
    except (KeyError, TypeError, ValueError, InputError) as exc:
        raise CheckpointError(f"{source} has a malformed configuration: {exc}") from exc
    if vocab is not None and saved_vocab.tokens != vocab.tokens:
        raise CheckpointError(
            f"{source} was trained on another vocabulary ({len(saved_vocab)} tokens, materials "
            f"{', '.join(saved_vocab.materials)}) than this one ({len(vocab)} tokens)",
            hint="train a model on this data set's vocabulary",
        )
    model = build_model(str(found), model_cfg)
    state = {k[6:]: v for k, v in ckpt.tensors.items() if k.startswith("model.")}
    try:
        model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
    except RuntimeError as exc:
        raise CheckpointError(f"{source}: the weights do not fit the recorded model shape: {exc}") from exc
    model.to(device)
    optimizer = {k[6:]: v for k, v in ckpt.tensors.items() if k.startswith("optim.")}
    return LoadedModel(
        model=model,
        vocab=saved_vocab,
        simulation=simulation,
        schedule=schedule,
        training=dict(ckpt.extra.get("training", {})),
        optimizer=optimizer,
    )
