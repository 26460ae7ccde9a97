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
import math
import os
import re
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
    HaiError,
    InputError,
    OutputError,
    RngStreams,
    load_checkpoint,
    progress,
    save_checkpoint,
    write_json,
)
from hai.shared.checks import check_disk, check_memory

__all__ = [
    "Dataset",
    "DatasetInfo",
    "check_spectra",
    "estimate_dataset_bytes",
    "generate_dataset",
    "load_dataset",
    "random_stacks",
]

MANIFEST = "manifest.json"
FORMAT = "hai-photonics-dataset"
FORMAT_VERSION = 1
_SHARD_FILE = re.compile(r"shard-\d{5,}\.safetensors")
#: spectra are fractions of light; values this far outside [0, 1] are refused (float16 storage
#: and float32 arithmetic round to well within it)
SPECTRA_TOLERANCE = 1e-3
_CHECK_ROWS = 65536  # rows checked at a time, so a 1M-spectrum library needs no full-size copy


def check_spectra(spectra: Any, source: str, *, width: int | None = None) -> torch.Tensor:
    """``spectra`` (T, 3, W) as a float tensor, or an :class:`InputError` naming ``source`` and the row.

    Refuses non-float dtypes, other shapes (and a W other than ``width`` when given), NaN or
    infinite values, and values outside [0, 1] (by more than :data:`SPECTRA_TOLERANCE`): R, A and T
    are fractions of light. The error names the first bad row (target) and where in it.

    >>> check_spectra(torch.full((2, 3, 4), 0.5), "targets").shape
    torch.Size([2, 3, 4])
    >>> bad = torch.full((2, 3, 4), 0.5); bad[1, 2, 3] = float("nan")
    >>> check_spectra(bad, "targets.safetensors")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    hai.shared.errors.InputError: targets.safetensors: spectra row 1 has a NaN or infinite value (T at ...
    """
    tensor = spectra if isinstance(spectra, torch.Tensor) else torch.as_tensor(np.asarray(spectra))
    if not tensor.is_floating_point():
        raise InputError(
            f"{source}: spectra have dtype {str(tensor.dtype).replace('torch.', '')}, not a float type",
            hint="spectra are R, A, T fractions stored as float16, float32 or float64",
        )
    want = f"(T, 3, {width if width is not None else 'W'})"
    if tensor.ndim != 3 or tensor.shape[1] != 3 or (width is not None and tensor.shape[2] != width):
        raise InputError(f"{source}: spectra must have shape {want} (R, A, T), got {tuple(tensor.shape)}")
    hint = "spectra must be finite fractions of light in [0, 1]; fix or drop that row"
    for start in range(0, tensor.shape[0], _CHECK_ROWS):
        chunk = tensor[start : start + _CHECK_ROWS]
        bad = ~torch.isfinite(chunk)
        kind = "a NaN or infinite value"
        if not bool(bad.any()):
            bad = (chunk < -SPECTRA_TOLERANCE) | (chunk > 1 + SPECTRA_TOLERANCE)
            kind = "a value outside [0, 1]"
            if not bool(bad.any()):
                continue
        row, channel, column = (int(i) for i in torch.nonzero(bad)[0])
        value = float(chunk[row, channel, column])
        shown = "" if kind.startswith("a NaN") else f" ({value:g})"
        raise InputError(
            f"{source}: spectra row {start + row} has {kind}{shown} "
            f"({'RAT'[channel]} at wavelength index {column})",
            hint=hint,
        )
    return tensor


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
    if out.exists() and not out.is_dir():
        raise OutputError(
            f"cannot write the data set to {out}: it is a file, not a folder", hint="give a folder"
        )
    for parent in out.parents:
        if parent.exists():
            if not parent.is_dir():
                raise OutputError(f"cannot write the data set to {out}: {parent} is a file, not a folder")
            break
    # Refuse sizes the machine cannot hold before anything is planned or written.
    need = estimate_dataset_bytes(n, shard_size, len(cfg.wavelengths_nm), vocab.sequence_length, batch_size)
    what = f"a data set of {n:,} stacks in shards of {shard_size:,}"
    check_memory(need["memory"], what)
    check_disk(out, need["disk"] - _existing_bytes(out), what)
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
    if manifest_path.exists():
        old = _read_json(manifest_path)
        if isinstance(old, dict):
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


def estimate_dataset_bytes(
    n: int, shard_size: int, wavelengths: int, sequence_length: int, batch_size: int = 512
) -> dict[str, float]:
    """About how much disk and memory :func:`generate_dataset` needs (bytes, upper estimates).

    Disk: the float16 spectra and int64 tokens of every stack, a header per shard, and the
    manifest (about 80 bytes per shard entry, written next to its previous version). Memory:
    the manifest as Python objects and JSON text, one shard's spectra twice (parts and their
    concatenation) and tokens, and one simulation batch in complex128.

    >>> round(estimate_dataset_bytes(10**12, 100_000, 171, 21)["disk"] / 1e15, 2)  # petabytes
    1.19
    """
    shards = math.ceil(n / shard_size)
    per_stack = 3 * wavelengths * 2 + sequence_length * 8
    manifest_text = 40_000 + 80 * shards
    disk = n * per_stack + shards * 1_000 + 2 * manifest_text
    one_shard = min(n, shard_size) * (2 * 3 * wavelengths * 2 + sequence_length * 8)
    batch = min(n, batch_size) * (sequence_length + 2) * wavelengths * 16 * 8
    memory = shards * 400 + 2 * manifest_text + one_shard + batch
    return {"disk": float(disk), "memory": float(memory)}


def _existing_bytes(out: Path) -> int:
    """Bytes of shards already in ``out`` (kept on a resume, so not needed again)."""
    if not out.is_dir():
        return 0
    total = 0
    for entry in out.iterdir():
        if _SHARD_FILE.fullmatch(entry.name) and entry.is_file():
            total += entry.stat().st_size
    return total


def _read_json(path: Path) -> Any:
    """A JSON file as Python data, or a one-line :class:`InputError` for anything unreadable."""
    if path.is_dir():
        raise InputError(f"{path} is a folder, not a JSON file")
    try:
        size = path.stat().st_size
        check_memory(20 * size, f"reading {path}")
        text = path.read_text(encoding="utf-8")
        return json.loads(text)
    except HaiError:
        raise
    except UnicodeDecodeError:
        raise InputError(f"{path} is not a text (UTF-8) JSON file") from None
    except json.JSONDecodeError as exc:
        raise InputError(
            f"{path} is not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})"
        ) from None
    except (OSError, RecursionError, ValueError) as exc:
        raise InputError(f"cannot read {path}: {exc}") from None


def _read_manifest(folder: Path) -> dict[str, Any]:
    """The manifest of the data set in ``folder``, checked field by field (never trusted)."""
    manifest_path = folder / MANIFEST
    if not folder.is_dir():
        raise InputError(
            f"{folder} is not a hai-photonics data set folder",
            hint="give the folder that holds manifest.json",
        )
    if not manifest_path.is_file():
        raise InputError(f"{folder} is not a hai-photonics data set (no {MANIFEST})")
    manifest = _read_json(manifest_path)
    bad = f"{manifest_path} is not a data set manifest this version can read"
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise InputError(bad, hint=f"its 'format' must be {FORMAT!r}")
    version = manifest.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or not 1 <= version <= FORMAT_VERSION:
        raise InputError(bad, hint=f"format_version {version!r}; this version reads 1..{FORMAT_VERSION}")
    if not manifest.get("complete"):
        raise InputError(
            f"the data set in {folder} is incomplete", hint="run the same dataset command again to finish it"
        )
    shards = manifest.get("shards")
    if not isinstance(shards, list) or not shards:
        raise InputError(f"{manifest_path}: 'shards' must be a non-empty list")
    for i, shard in enumerate(shards):
        name = shard.get("file") if isinstance(shard, dict) else None
        count = shard.get("n") if isinstance(shard, dict) else None
        # only shard files inside the folder: no other names, no paths
        if not isinstance(name, str) or not _SHARD_FILE.fullmatch(name):
            raise InputError(
                f"{manifest_path}: shard {i} names the file {name!r}",
                hint="shards are files shard-NNNNN.safetensors inside the data set folder",
            )
        if not isinstance(count, int) or isinstance(count, bool) or count < 1:
            raise InputError(f"{manifest_path}: shard {i} has n = {count!r}, not a positive integer")
    seed = manifest.get("seed")
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise InputError(f"{manifest_path}: 'seed' must be an integer, got {seed!r}")
    for key in ("vocabulary", "config"):
        if not isinstance(manifest.get(key), dict):
            raise InputError(f"{manifest_path}: {key!r} must be a JSON object")
    return manifest


def load_dataset(path: str | os.PathLike[str]) -> Dataset:
    """Read a data set written by :func:`generate_dataset` (all shards, in order).

    Everything read is checked before use: the manifest's fields (shard files must be
    ``shard-NNNNN.safetensors`` inside the folder), each shard's tensors (names, dtypes, shapes,
    token ids in the vocabulary, spectra finite and in [0, 1]). Shards are safetensors: nothing
    in them is executed or unpickled. Anything wrong is an :class:`InputError` naming the file.
    """
    folder = Path(path)
    manifest = _read_manifest(folder)
    manifest_path = folder / MANIFEST
    try:
        vocab = Vocabulary.from_dict(manifest["vocabulary"])
        config = SimulationConfig.from_dict(manifest["config"])
    except HaiError as exc:
        raise InputError(f"{manifest_path}: {exc.message}", hint=exc.hint) from None
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(
            f"{manifest_path}: malformed vocabulary or config ({type(exc).__name__}: {exc})"
        ) from None
    width, length = len(config.wavelengths_nm), vocab.sequence_length
    spectra, tokens = [], []
    for shard in manifest["shards"]:
        file = folder / shard["file"]
        try:
            ckpt = load_checkpoint(file, framework="torch")
        except CheckpointError as exc:
            raise InputError(exc.message, hint=exc.hint) from None
        count = shard["n"]
        s = ckpt.tensors.get("spectra")
        t = ckpt.tensors.get("tokens")
        if s is None or t is None:
            raise InputError(f"{file}: a shard must hold the tensors 'spectra' and 'tokens'")
        if s.shape[:1] != (count,):
            raise InputError(f"{file}: {tuple(s.shape)[:1]} spectra, the manifest says {count}")
        check_spectra(s, str(file), width=width)
        if t.dtype != torch.int64 or tuple(t.shape) != (count, length):
            raise InputError(
                f"{file}: tokens must be int64 of shape ({count}, {length}), "
                f"got {str(t.dtype).replace('torch.', '')} {tuple(t.shape)}"
            )
        if count and (int(t.min()) < 0 or int(t.max()) >= len(vocab.tokens)):
            row = int(torch.nonzero((t < 0) | (t >= len(vocab.tokens)))[0, 0])
            raise InputError(
                f"{file}: tokens row {row} holds an id outside the vocabulary (0..{len(vocab.tokens) - 1})"
            )
        spectra.append(s)
        tokens.append(t)
    return Dataset(
        spectra=torch.cat(spectra),
        tokens=torch.cat(tokens),
        vocab=vocab,
        config=config,
        seed=int(manifest["seed"]),
    )
