"""Template matching: the library stack whose spectrum is nearest (mean absolute error) to a target.

The nearest-neighbour baseline of OptoLlama (``scripts/template_matching.py``). The library is
kept in float16 as stored and compared chunk by chunk in float32 (``torch.cdist`` with p = 1),
so a library of 1M spectra needs about 1 GB plus one chunk of distances, never all at once.
Hand-written because nearest-neighbour libraries (scikit-learn, faiss) either hold all pairwise
distances or need float32 copies of the whole library; this is a few lines of torch on any device.

>>> import torch
>>> library = torch.rand(100, 3, 171, dtype=torch.float64).half()
>>> tokens = torch.arange(100)[:, None].repeat(1, 21)
>>> model = TemplateBaseline().fit(library, tokens)
>>> model.match(library[[7, 42]].float()).index.tolist()
[7, 42]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from hai.photonics.dataset import Dataset, check_spectra
from hai.photonics.stacks import Stack, Vocabulary
from hai.shared import InputError, resolve_device

__all__ = ["Match", "TemplateBaseline"]


@dataclass
class Match:
    """For each target: the index of the nearest library entry, and its mean absolute error."""

    index: torch.Tensor
    mae: torch.Tensor


class TemplateBaseline:
    """Nearest library spectrum by mean absolute error over R, A, T and all wavelengths.

    scikit-learn's contract: ``fit(spectra, tokens)`` stores the library (``library_spectra_``,
    ``library_tokens_``) and returns ``self``; ``predict(targets)`` returns the token ids of the
    nearest entries; ``match(targets)`` also gives their indices and errors.
    """

    def __init__(self, *, library_chunk: int = 32768, target_chunk: int = 512, device: Any = "cpu") -> None:
        if library_chunk < 1 or target_chunk < 1:
            raise InputError("library_chunk and target_chunk must be positive")
        self.library_chunk = library_chunk
        self.target_chunk = target_chunk
        self.device = device

    def fit(
        self, spectra: torch.Tensor, tokens: torch.Tensor, vocab: Vocabulary | None = None
    ) -> TemplateBaseline:
        """Store the library: spectra (N, 3, W) (any float dtype) and token ids (N, L)."""
        spectra = torch.as_tensor(spectra)
        tokens = torch.as_tensor(tokens)
        if (
            spectra.ndim != 3
            or tokens.ndim != 2
            or spectra.shape[0] != tokens.shape[0]
            or spectra.shape[0] == 0
        ):
            raise InputError(
                f"need spectra (N, 3, W) and tokens (N, L) with the same N > 0, got {tuple(spectra.shape)} "
                f"and {tuple(tokens.shape)}"
            )
        check_spectra(spectra, "library spectra")
        self.library_spectra_ = spectra.to(torch.float16) if spectra.dtype != torch.float16 else spectra
        self.library_tokens_ = tokens
        self.vocab_ = vocab or Vocabulary()
        return self

    @classmethod
    def from_dataset(cls, dataset: Dataset, **kwargs: Any) -> TemplateBaseline:
        """A baseline fitted on a data set from :func:`~hai.photonics.dataset.load_dataset`."""
        return cls(**kwargs).fit(dataset.spectra, dataset.tokens, dataset.vocab)

    def _check_fitted(self) -> None:
        if not hasattr(self, "library_spectra_"):
            raise InputError(
                "this TemplateBaseline is not fitted yet", hint="call fit(spectra, tokens) first"
            )

    def match(self, targets: torch.Tensor) -> Match:
        """Nearest library entry of each target spectrum (T, 3, W) or (3, W)."""
        self._check_fitted()
        targets = torch.as_tensor(targets)
        if targets.ndim == 2:
            targets = targets[None]
        lib = self.library_spectra_
        if targets.ndim != 3 or targets.shape[1:] != lib.shape[1:]:
            raise InputError(
                f"targets must have shape (T, {lib.shape[1]}, {lib.shape[2]}) like the library, "
                f"got {tuple(targets.shape)}"
            )
        check_spectra(targets, "targets")
        device = resolve_device(self.device)
        flat_targets = targets.reshape(targets.shape[0], -1).to(device, torch.float32)
        width = flat_targets.shape[1]
        best_mae = torch.full((targets.shape[0],), float("inf"), device=device)
        best_idx = torch.zeros(targets.shape[0], dtype=torch.int64, device=device)
        for start in range(0, lib.shape[0], self.library_chunk):
            chunk = lib[start : start + self.library_chunk].reshape(-1, width).to(device, torch.float32)
            for t0 in range(0, flat_targets.shape[0], self.target_chunk):
                sl = slice(t0, t0 + self.target_chunk)
                mae = torch.cdist(flat_targets[sl], chunk, p=1.0) / width
                value, idx = mae.min(dim=1)
                better = value < best_mae[sl]
                best_mae[sl] = torch.where(better, value, best_mae[sl])
                best_idx[sl] = torch.where(better, idx + start, best_idx[sl])
        return Match(index=best_idx.cpu(), mae=best_mae.cpu())

    def predict(self, targets: torch.Tensor) -> torch.Tensor:
        """Token ids (T, L) of the nearest library stacks."""
        return self.library_tokens_[self.match(targets).index]

    def predict_stacks(self, targets: torch.Tensor) -> list[Stack]:
        """The nearest library stacks as :class:`Stack` objects."""
        return self.vocab_.decode_batch(self.predict(targets))
