"""Three interchangeable inverse designers — template matching, OptoGPT, OptoLlama — with one
interface: ``fit(dataset)`` then ``design(targets, k=...)`` → :class:`Designs`.

Every designer proposes ``k`` candidate stacks per target, re-simulates them with hai's own TMM
and keeps the one of least spectral MAE over R, A, T (best-of-k, as OptoLlama's
``prediction.py`` does with ``MC_SAMPLES`` 10); ``refine=True`` then polishes the winner's
thicknesses through the differentiable TMM (:mod:`hai.photonics.inverse.refine`). The template
designer's candidates are its k nearest library spectra. Hand-written: glue around the models.
"""

from __future__ import annotations

import os
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch

from hai.photonics.baseline import TemplateBaseline
from hai.photonics.dataset import Dataset
from hai.photonics.inverse.checkpoints import LoadedModel, load_model, shipped_model_path
from hai.photonics.inverse.optogpt import OptoGPT, decode
from hai.photonics.inverse.refine import refine as refine_designs
from hai.photonics.inverse.sampling import is_valid, sample
from hai.photonics.inverse.targets import check_targets
from hai.photonics.inverse.training import TrainConfig, train
from hai.photonics.simulate import SimulationConfig, simulate, simulate_ids
from hai.photonics.stacks import Stack, Vocabulary
from hai.shared import InputError, RngStreams

__all__ = [
    "DESIGNERS",
    "Designer",
    "Designs",
    "OptoGPTDesigner",
    "OptoLlamaDesigner",
    "TemplateDesigner",
    "get_designer",
]


@dataclass
class Designs:
    """The chosen design of each target and how good it is."""

    stacks: list[Stack]
    mae: torch.Tensor
    candidates_mae: torch.Tensor
    valid_fraction: float
    seconds_per_target: float
    ids: torch.Tensor | None = None
    mae_before_refine: torch.Tensor | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "designs": [str(s) for s in self.stacks],
            "mae": [round(float(x), 6) for x in self.mae],
            "mae_mean": round(float(self.mae.mean()), 6),
            "valid_fraction": self.valid_fraction,
            "seconds_per_target": round(self.seconds_per_target, 4),
        }
        if self.mae_before_refine is not None:
            out["mae_before_refine"] = [round(float(x), 6) for x in self.mae_before_refine]
        return out


class Designer(Protocol):
    name: str
    vocab: Vocabulary
    config: SimulationConfig

    def fit(self, dataset: Dataset) -> Designer: ...

    def design(self, targets: Any, *, k: int = 10, refine: bool = False) -> Designs: ...


def _score(
    ids: torch.Tensor, targets: torch.Tensor, vocab: Vocabulary, config: SimulationConfig
) -> torch.Tensor:
    spectra = simulate_ids(ids, vocab, config, batch_size=2048).stacked().clamp(0, 1)
    return (spectra - targets.to(torch.float64)).abs().mean(dim=(1, 2))


def _best_of(
    candidates: torch.Tensor, targets: torch.Tensor, k: int, vocab: Vocabulary, config: SimulationConfig
) -> tuple[torch.Tensor, torch.Tensor, float]:
    """candidates (T·k, L), target-major: the best ids (T, L), all MAEs (T, k), valid fraction."""
    valid = is_valid(candidates, vocab)
    mae = torch.full((candidates.shape[0],), float("inf"), dtype=torch.float64)
    if bool(valid.any()):
        mae[valid] = _score(candidates[valid], targets.repeat_interleave(k, 0)[valid], vocab, config)
    mae = mae.reshape(-1, k)
    best = mae.argmin(dim=1)
    ids = candidates.reshape(-1, k, candidates.shape[1])[torch.arange(mae.shape[0]), best]
    return ids, mae, float(valid.float().mean())


def _finish(
    ids: torch.Tensor,
    mae: torch.Tensor,
    valid: float,
    targets: torch.Tensor,
    vocab: Vocabulary,
    config: SimulationConfig,
    refine: bool,
    start: float,
) -> Designs:
    best = mae.min(dim=1).values
    stacks = vocab.decode_batch(ids)
    before = None
    if refine:
        result = refine_designs(ids, targets, vocab, config)
        stacks, before, best = result.stacks, best, result.mae_after
    return Designs(
        stacks=stacks,
        mae=best,
        candidates_mae=mae,
        valid_fraction=valid,
        seconds_per_target=(time.perf_counter() - start) / max(1, targets.shape[0]),
        ids=ids,
        mae_before_refine=before,
    )


def _check_k(k: int) -> int:
    if not isinstance(k, int) or k < 1:
        raise InputError(f"k must be a positive integer, got {k!r}")
    return k


class TemplateDesigner:
    """The nearest library spectra (:class:`~hai.photonics.baseline.TemplateBaseline`), best of k."""

    name = "template"

    def __init__(self, *, device: Any = "cpu") -> None:
        self.device = device

    def fit(self, dataset: Dataset) -> TemplateDesigner:
        self.baseline = TemplateBaseline.from_dataset(dataset, device=self.device)
        self.vocab, self.config = dataset.vocab, dataset.config
        return self

    def design(self, targets: Any, *, k: int = 10, refine: bool = False) -> Designs:
        if not hasattr(self, "baseline"):
            raise InputError("the template designer is not fitted", hint="call fit(dataset) first")
        k = _check_k(k)
        start = time.perf_counter()
        target = check_targets(targets, len(self.config.wavelengths_nm))
        lib = self.baseline.library_spectra_.reshape(self.baseline.library_spectra_.shape[0], -1)
        k = min(k, lib.shape[0])
        flat = target.reshape(target.shape[0], -1)
        picks = []
        for s in range(0, flat.shape[0], 256):
            dist = torch.cat(
                [
                    torch.cdist(flat[s : s + 256], lib[c : c + 32768].float(), p=1.0)
                    for c in range(0, lib.shape[0], 32768)
                ],
                dim=1,
            )
            picks.append(dist.topk(k, dim=1, largest=False).indices)
        candidates = self.baseline.library_tokens_[torch.cat(picks).reshape(-1)]
        ids, mae, valid = _best_of(candidates, target, k, self.vocab, self.config)
        return _finish(ids, mae, valid, target, self.vocab, self.config, refine, start)


class _ModelDesigner(ABC):
    kind = ""

    def __init__(
        self,
        checkpoint: str | os.PathLike[str] | LoadedModel | None = None,
        *,
        seed: int = 0,
        batch_size: int = 512,
        train_config: TrainConfig | None = None,
        out_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        self.seed = seed
        self.batch_size = batch_size
        self.train_config = train_config
        self.out_dir = out_dir
        if checkpoint is not None:
            self._use(
                checkpoint if isinstance(checkpoint, LoadedModel) else load_model(checkpoint, kind=self.kind)
            )

    def _use(self, loaded: LoadedModel) -> None:
        self.loaded = loaded
        self.vocab, self.config = loaded.vocab, loaded.simulation

    @classmethod
    def shipped(cls, **kwargs: Any) -> Any:
        """The designer with the small model shipped in the package."""
        return cls(shipped_model_path(cls.kind), **kwargs)

    def fit(self, dataset: Dataset) -> Any:
        """Train on ``dataset`` (``train_config``, checkpoints in ``out_dir``) and use the best model."""
        cfg = self.train_config or TrainConfig(model=self.kind)
        if cfg.model != self.kind:
            raise InputError(f"a {self.kind} designer cannot train a {cfg.model} model")
        out = Path(self.out_dir) if self.out_dir is not None else Path.cwd() / f"{self.kind}-run"
        result = train(dataset, out, cfg, progress_bar=False)
        self._use(load_model(result.best_path, kind=self.kind, vocab=dataset.vocab))
        return self

    @abstractmethod
    def _propose(self, targets: torch.Tensor, k: int, gen: torch.Generator) -> torch.Tensor:
        """(len(targets) · k, L) candidate token ids, k per target in order."""

    def design(self, targets: Any, *, k: int = 10, refine: bool = False) -> Designs:
        if not hasattr(self, "loaded"):
            raise InputError(
                f"the {self.kind} designer has no model", hint="give a checkpoint or call fit(dataset)"
            )
        k = _check_k(k)
        start = time.perf_counter()
        target = check_targets(targets, len(self.config.wavelengths_nm))
        gen = RngStreams(self.seed).torch("design")
        candidates = self._propose(target, k, gen)
        ids, mae, valid = _best_of(candidates, target, k, self.vocab, self.config)
        return _finish(ids, mae, valid, target, self.vocab, self.config, refine, start)


class OptoLlamaDesigner(_ModelDesigner):
    """OptoLlama samples, best of k: ``confidence``, the reference's ``remask``, or ``length``
    (where each stack ends is drawn first)."""

    name = kind = "optollama"

    def __init__(
        self,
        checkpoint: str | os.PathLike[str] | LoadedModel | None = None,
        *,
        sampler: str = "confidence",
        steps: int = 21,
        temperature: float = 0.65,
        top_p: float | None = 0.9,
        **kwargs: Any,
    ) -> None:
        super().__init__(checkpoint, **kwargs)
        self.sampler, self.steps, self.temperature, self.top_p = sampler, steps, temperature, top_p

    def _propose(self, targets: torch.Tensor, k: int, gen: torch.Generator) -> torch.Tensor:
        rep = targets.repeat_interleave(k, 0)
        out = [
            sample(
                self.loaded.model,
                rep[s : s + self.batch_size],
                self.vocab,
                method=self.sampler,
                steps=self.steps,
                temperature=self.temperature,
                top_p=self.top_p,
                schedule=self.loaded.schedule,
                generator=gen,
            )
            for s in range(0, rep.shape[0], self.batch_size)
        ]
        return torch.cat(out)


class OptoGPTDesigner(_ModelDesigner):
    """OptoGPT: greedy for k = 1; for k > 1 the greedy design plus k − 1 top-p samples (or beams)."""

    name = kind = "optogpt"

    def __init__(
        self,
        checkpoint: str | os.PathLike[str] | LoadedModel | None = None,
        *,
        decoding: str = "sample",
        temperature: float = 1.0,
        top_k: int | None = None,
        top_p: float | None = 0.9,
        **kwargs: Any,
    ) -> None:
        super().__init__(checkpoint, **kwargs)
        self.decoding, self.temperature, self.top_k, self.top_p = decoding, temperature, top_k, top_p

    def _propose(self, targets: torch.Tensor, k: int, gen: torch.Generator) -> torch.Tensor:
        model = self.loaded.model
        assert isinstance(model, OptoGPT)
        greedy = torch.cat(
            [
                decode(model, targets[s : s + self.batch_size], self.vocab)
                for s in range(0, targets.shape[0], self.batch_size)
            ]
        )
        if k == 1:
            return greedy
        if self.decoding == "beam":
            extra = torch.cat(
                [
                    decode(model, targets[s : s + 64], self.vocab, method="beam", beams=k - 1)
                    for s in range(0, targets.shape[0], 64)
                ]
            )[:, None].expand(-1, k - 1, -1)
        else:
            rep = targets.repeat_interleave(k - 1, 0)
            extra = torch.cat(
                [
                    decode(
                        model,
                        rep[s : s + self.batch_size],
                        self.vocab,
                        method="sample",
                        temperature=self.temperature,
                        top_k=self.top_k,
                        top_p=self.top_p,
                        generator=gen,
                    )
                    for s in range(0, rep.shape[0], self.batch_size)
                ]
            ).reshape(targets.shape[0], k - 1, -1)
        return torch.cat([greedy[:, None], extra], dim=1).reshape(-1, greedy.shape[1])


DESIGNERS = ("optollama", "optogpt", "template")


def get_designer(name: str, **kwargs: Any) -> Any:
    """A designer by name: ``optollama``, ``optogpt`` (shipped models unless ``checkpoint``), ``template``."""
    if name == "template":
        return TemplateDesigner(**kwargs)
    if name in ("optollama", "optogpt"):
        cls = OptoLlamaDesigner if name == "optollama" else OptoGPTDesigner
        if kwargs.get("checkpoint") is None:
            kwargs["checkpoint"] = shipped_model_path(name)
        return cls(**kwargs)
    raise InputError(f"unknown designer {name!r}", hint=f"designers: {', '.join(DESIGNERS)}")


def simulate_designs(stacks: list[Stack], config: SimulationConfig) -> torch.Tensor:
    """(T, 3, W) spectra of (possibly refined, off-grid) designs."""
    return simulate(stacks, config).stacked().clamp(0, 1)
