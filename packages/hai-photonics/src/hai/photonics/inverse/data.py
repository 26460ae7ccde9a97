"""Training data for the inverse models: hai's data sets, or the public OptoLlama layout.

hai's own folders (``manifest.json`` + shards, :func:`hai.photonics.dataset.load_dataset`) load
as they are. A folder in the layout of the Hugging Face data set ``HZBSolarOptics/MultiLayerThinFilms``
(``tokens.json`` and ``*.safetensors`` shards holding ``spectra`` float16 [N, 3, 171] and
``thin_films`` int64 [N, 21]; the user downloads it — nothing is fetched here) is read and its
token ids are re-mapped onto a hai :class:`~hai.photonics.stacks.Vocabulary` of the same
materials and thicknesses (its ``<PAD>``/``<MSK>``/``<EOS>`` included). Hand-written: the
re-mapping is specific to the two token lists.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import torch

from hai.photonics.dataset import Dataset, load_dataset
from hai.photonics.simulate import OPTOLLAMA
from hai.photonics.stacks import EOS, MASK, PAD, Vocabulary
from hai.shared import InputError

__all__ = ["load_training_data", "split"]


def load_training_data(path: str | os.PathLike[str], *, limit: int | None = None) -> Dataset:
    """A hai data set folder, or a folder in the public OptoLlama layout (see the module notes)."""
    folder = Path(path)
    if (folder / "manifest.json").is_file():
        data = load_dataset(folder)
    elif (folder / "tokens.json").is_file():
        data = _load_public(folder)
    else:
        raise InputError(
            f"{folder} is neither a hai-photonics data set (manifest.json) nor the OptoLlama layout "
            f"(tokens.json + *.safetensors)",
            hint="generate one with `hai photonics dataset` or download MultiLayerThinFilms yourself",
        )
    if limit is not None and limit < len(data):
        data = Dataset(data.spectra[:limit], data.tokens[:limit], data.vocab, data.config, data.seed)
    return data


def _load_public(folder: Path) -> Dataset:
    from safetensors.torch import load_file

    tokens = json.loads((folder / "tokens.json").read_text(encoding="utf-8"))
    if isinstance(tokens, dict):  # {token: id}
        tokens = [t for t, _ in sorted(tokens.items(), key=lambda kv: int(kv[1]))]
    layer_tokens = [t for t in tokens if not (t.startswith("<") and t.endswith(">"))]
    materials = list(dict.fromkeys(t.rsplit("_", 1)[0] for t in layer_tokens))
    thick = sorted({int(float(t.rsplit("_", 1)[1])) for t in layer_tokens})
    vocab = Vocabulary(materials, thick)
    special = {PAD: vocab.pad_id, MASK: vocab.mask_id, EOS: vocab.eos_id, "<BOS>": vocab.bos_id}
    mapping = np.array([special.get(t, -1) if t.startswith("<") else vocab.id(t) for t in tokens])
    if (mapping < 0).any():
        raise InputError(f"{folder}/tokens.json holds special tokens hai does not know")
    spectra, ids = [], []
    for shard in sorted(folder.glob("*.safetensors")):
        tensors = load_file(str(shard))
        if "spectra" not in tensors or "thin_films" not in tensors:
            raise InputError(f"{shard} lacks 'spectra' or 'thin_films'")
        spectra.append(tensors["spectra"].to(torch.float16))
        ids.append(torch.from_numpy(mapping[tensors["thin_films"].numpy()]))
    if not spectra:
        raise InputError(f"{folder} holds no .safetensors shards")
    out = Dataset(torch.cat(spectra), torch.cat(ids), vocab, OPTOLLAMA, seed=-1)
    if (
        out.spectra.shape[1:] != (3, len(OPTOLLAMA.wavelengths_nm))
        or out.tokens.shape[1] != vocab.sequence_length
    ):
        raise InputError(f"{folder}: expected spectra [N, 3, 171] and thin_films [N, 21]")
    return out


def split(n: int, val_fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Train and validation indices: a seeded permutation, the last ``val_fraction`` held out."""
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    n_val = max(1, round(n * val_fraction)) if val_fraction > 0 and n > 1 else 0
    return perm[: n - n_val], perm[n - n_val :]
