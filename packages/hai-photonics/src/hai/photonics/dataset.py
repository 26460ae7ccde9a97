"""Random stacks and their spectra, written as safetensors shards with a JSON manifest.

The layout follows OptoLlama's data set: ``spectra`` float16 ``[N, 3 (R, A, T), W]`` and
``tokens`` int64 ``[N, max_layers + 1]`` (layers, ``<EOS>``, ``<PAD>``...). Shard ``i`` draws its
stacks from its own random stream (seed, i), so a data set is the same whatever was interrupted
and resumed; finished shards are kept on a rerun.
Hand-written because no library generates thin-film data sets; shards are written atomically with
:func:`hai.shared.save_checkpoint` (safetensors + JSON metadata), so an interrupted run never
leaves a half-written shard behind.

>>> import tempfile
>>> info = generate_dataset(tempfile.mkdtemp(), 20, seed=1, shard_size=8, progress_bar=False)
>>> info.n, info.shards, load_dataset(info.path).spectra.shape[1:]
(20, 3, torch.Size([3, 171]))
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hai.photonics.simulate import SimulationConfig, get_config, simulate_ids
from hai.photonics.stacks import Vocabulary
from hai.shared import (
    CheckpointError,
    InputError,
    RngStreams,
    load_checkpoint,
    progress,
    save_checkpoint,
    write_json,
)

__all__ = ["Dataset", "DatasetInfo", "generate_dataset", "load_dataset", "random_stacks"]

MANIFEST = "manifest.json"
FORMAT = "hai-photonics-dataset"
FORMAT_VERSION = 1


def random_stacks(
    n: int,
    rng: np.random.Generator,
    vocab: Vocabulary | None = None,
    *,
    min_layers: int = 1,
    max_layers: int | None = None,
) -> torch.Tensor:
    """Token ids (n, vocab.sequence_length) of random stacks.

    The number of layers is uniform in [min_layers, max_layers], materials are uniform with no two
    equal neighbours, thicknesses uniform on the vocabulary's grid.

    >>> ids = random_stacks(3, np.random.default_rng(0))
    >>> tuple(ids.shape)
    (3, 21)
    """
    vocab = vocab or Vocabulary()
    max_layers = vocab.max_layers if max_layers is None else max_layers
    if not 1 <= min_layers <= max_layers <= vocab.max_layers:
        raise InputError(f"need 1 <= min_layers <= max_layers <= {vocab.max_layers}")
    m, t = len(vocab.materials), len(vocab.thicknesses_nm)
    if m < 2 and max_layers > 1:
        raise InputError("stacks without equal neighbours need at least 2 materials")
    depth = rng.integers(min_layers, max_layers + 1, size=n)
    first = rng.integers(0, m, size=(n, 1))
    steps = rng.integers(1, max(m, 2), size=(n, vocab.max_layers - 1))  # shift to any other material
    materials = np.cumsum(np.concatenate([first, steps], axis=1), axis=1) % m
    thickness = rng.integers(0, t, size=(n, vocab.max_layers))
    ids = len(vocab.tokens) - m * t + materials * t + thickness
    seq = np.full((n, vocab.sequence_length), vocab.pad_id, dtype=np.int64)
    positions = np.arange(vocab.max_layers)[None, :]
    seq[:, : vocab.max_layers] = np.where(positions < depth[:, None], ids, vocab.pad_id)
    seq[np.arange(n), depth] = vocab.eos_id
    return torch.from_numpy(seq)


@dataclass
class DatasetInfo:
    """What :func:`generate_dataset` did: the folder, sizes, and the throughput of this run."""

    path: Path
    n: int
    shards: int
    generated_shards: int
    kept_shards: int
    wall_s: float
    stacks_per_s: float | None


@dataclass
class Dataset:
    """A loaded data set: spectra (N, 3, W) float16, tokens (N, L) int64, and how they were made."""

    spectra: torch.Tensor
    tokens: torch.Tensor
    vocab: Vocabulary
    config: SimulationConfig
    seed: int

    def __len__(self) -> int:
        return int(self.tokens.shape[0])


class _NoBar:
    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


def _shard_name(i: int) -> str:
    return f"shard-{i:05d}.safetensors"


def _plan(n: int, shard_size: int) -> list[int]:
    return [min(shard_size, n - start) for start in range(0, n, shard_size)]


def _shard_ok(path: Path, index: int, count: int, seed: int) -> bool:
    if not path.is_file():
        return False
    try:
        ckpt = load_checkpoint(path, framework="numpy")
    except CheckpointError:
        return False
    cfg = ckpt.config
    return (
        cfg.get("shard") == index
        and cfg.get("n") == count
        and ckpt.seed == seed
        and tuple(ckpt.tensors.get("tokens", np.zeros(0)).shape[:1]) == (count,)
    )


def generate_dataset(
    out_dir: str | os.PathLike[str],
    n: int,
    *,
    seed: int = 0,
    config: str | SimulationConfig | None = None,
    vocab: Vocabulary | None = None,
    shard_size: int = 100_000,
    batch_size: int = 512,
    dtype: torch.dtype = torch.complex128,
    device: Any = "cpu",
    progress_bar: bool = True,
) -> DatasetInfo:
    """Write ``n`` random stacks and their R, A, T spectra to ``out_dir`` (resumable).

    A rerun with the same arguments keeps finished shards and writes the missing ones; a folder
    holding a different data set is refused. Spectra are simulated in ``dtype`` on ``device``,
    clamped to [0, 1] and stored as float16.
    """
    if not isinstance(n, int) or n < 1:
        raise InputError(f"n must be a positive integer, got {n!r}")
    if not isinstance(shard_size, int) or shard_size < 1:
        raise InputError(f"shard_size must be a positive integer, got {shard_size!r}")
    if not isinstance(seed, int) or seed < 0:
        raise InputError(f"seed must be a non-negative integer, got {seed!r}")
    cfg = get_config(config)
    vocab = vocab or Vocabulary()
    out = Path(out_dir)
    plan = _plan(n, shard_size)
    manifest: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "n": n,
        "seed": seed,
        "shard_size": shard_size,
        "config": cfg.to_dict(),
        "vocabulary": vocab.to_dict(),
        "fields": {"spectra": "float16 [N, 3 (R, A, T), W]", "tokens": "int64 [N, max_layers + 1]"},
        "shards": [{"file": _shard_name(i), "n": c} for i, c in enumerate(plan)],
    }
    manifest_path = out / MANIFEST
    if manifest_path.is_file():
        old = json.loads(manifest_path.read_text(encoding="utf-8"))
        old.pop("complete", None)
        if old != json.loads(json.dumps(manifest)):
            raise InputError(
                f"{out} already holds a different data set",
                hint="use a new --out folder, or the same n, seed, shard size, preset and vocabulary "
                "to resume",
            )
    out.mkdir(parents=True, exist_ok=True)
    write_json(manifest_path, {**manifest, "complete": False})
    write_json(out / "tokens.json", vocab.tokens)
    todo = [i for i, c in enumerate(plan) if not _shard_ok(out / _shard_name(i), i, c, seed)]
    kept = len(plan) - len(todo)
    streams = RngStreams(seed)
    total = sum(plan[i] for i in todo)
    start = time.perf_counter()
    bar: Any = progress(total=total, desc="stacks", unit="stack") if progress_bar else _NoBar()
    try:
        for i in todo:
            ids = random_stacks(plan[i], streams.numpy("dataset", i), vocab)
            parts = []
            for b in range(0, plan[i], batch_size):
                spectra = simulate_ids(ids[b : b + batch_size], vocab, cfg, dtype=dtype, device=device)
                parts.append(spectra.stacked().clamp(0, 1).to("cpu", torch.float16))
                bar.update(parts[-1].shape[0])
            save_checkpoint(
                out / _shard_name(i),
                {"spectra": torch.cat(parts), "tokens": ids},
                config={"shard": i, "n": plan[i]},
                seed=seed,
            )
    finally:
        bar.close()
    wall = time.perf_counter() - start
    write_json(manifest_path, {**manifest, "complete": True})
    return DatasetInfo(
        path=out,
        n=n,
        shards=len(plan),
        generated_shards=len(todo),
        kept_shards=kept,
        wall_s=wall,
        stacks_per_s=total / wall if total and wall > 0 else None,
    )


def load_dataset(path: str | os.PathLike[str]) -> Dataset:
    """Read a data set written by :func:`generate_dataset` (all shards, in order)."""
    folder = Path(path)
    manifest_path = folder / MANIFEST
    if not manifest_path.is_file():
        raise InputError(f"{folder} is not a hai-photonics data set (no {MANIFEST})")
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    if manifest.get("format") != FORMAT or int(manifest.get("format_version", 0)) > FORMAT_VERSION:
        raise InputError(f"{manifest_path} is not a data set manifest this version can read")
    if not manifest.get("complete"):
        raise InputError(
            f"the data set in {folder} is incomplete", hint="run the same dataset command again to finish it"
        )
    spectra, tokens = [], []
    for shard in manifest["shards"]:
        ckpt = load_checkpoint(folder / shard["file"], framework="torch")
        spectra.append(ckpt.tensors["spectra"])
        tokens.append(ckpt.tensors["tokens"])
    return Dataset(
        spectra=torch.cat(spectra),
        tokens=torch.cat(tokens),
        vocab=Vocabulary.from_dict(manifest["vocabulary"]),
        config=SimulationConfig.from_dict(manifest["config"]),
        seed=int(manifest["seed"]),
    )
