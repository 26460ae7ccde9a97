"""Checkpoints and result files with metadata, written atomically, read without unpickling.

A checkpoint is one safetensors file: the tensors, plus a JSON header under the metadata key
``"hai"`` with the format version, the hai version, the run's config, its seed and the time.
Results are JSON files with the same header. Loading never executes code from the file, and a
file written by a newer format fails with a message that says to upgrade.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np

from hai.shared._optional import optional, require
from hai.shared.errors import CheckpointError
from hai.shared.files import to_jsonable, write_bytes, write_json

FORMAT_VERSION = 1
_META_KEY = "hai"


def _hai_version() -> str:
    from hai.shared import __version__

    return __version__


@dataclass
class Checkpoint:
    """A loaded checkpoint: tensors and the metadata saved with them."""

    tensors: dict[str, Any]
    config: dict[str, Any] = field(default_factory=dict)
    seed: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    hai_version: str = ""
    created: str = ""
    format_version: int = FORMAT_VERSION


def _header(
    config: Mapping[str, Any] | None, seed: int | None, extra: Mapping[str, Any] | None
) -> dict[str, Any]:
    return {
        "format_version": FORMAT_VERSION,
        "hai_version": _hai_version(),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "config": to_jsonable(dict(config or {})),
        "seed": seed,
        "extra": to_jsonable(dict(extra or {})),
    }


def save_checkpoint(
    path: str | os.PathLike[str],
    tensors: Mapping[str, Any],
    *,
    config: Mapping[str, Any] | None = None,
    seed: int | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Save torch tensors or numpy arrays with metadata to a safetensors file, atomically.

    An interrupted or failed save leaves an existing file at ``path`` unchanged.

    >>> import numpy as np, tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "model.safetensors"
    >>> _ = save_checkpoint(p, {"w": np.ones(3)}, config={"lr": 0.1}, seed=1)
    >>> load_checkpoint(p, framework="numpy").config
    {'lr': 0.1}
    """
    if not isinstance(tensors, Mapping) or not all(isinstance(k, str) for k in tensors):
        raise CheckpointError("tensors must be a mapping from string names to tensors or arrays")
    metadata = {_META_KEY: json.dumps(_header(config, seed, extra), allow_nan=False)}
    torch = optional("torch")
    if torch is not None and any(isinstance(t, torch.Tensor) for t in tensors.values()):
        from safetensors.torch import save as save_torch

        as_torch = {
            name: (t if isinstance(t, torch.Tensor) else torch.as_tensor(np.asarray(t)))
            .detach()
            .to("cpu")
            .contiguous()
            .clone()  # safetensors refuses tensors that share storage
            for name, t in tensors.items()
        }
        data = save_torch(as_torch, metadata=metadata)
    else:
        from safetensors.numpy import save as save_numpy

        data = save_numpy(
            {n: np.ascontiguousarray(np.asarray(t)) for n, t in tensors.items()}, metadata=metadata
        )
    return write_bytes(path, data)


def _check_header(text: str | None, path: Path) -> dict[str, Any]:
    if text is None:
        raise CheckpointError(
            f"{path} is a safetensors file but not a hai checkpoint (no '{_META_KEY}' metadata)"
        )
    try:
        header = json.loads(text)
        version = int(header["format_version"])
    except (ValueError, KeyError, TypeError) as exc:
        raise CheckpointError(f"{path} has malformed hai metadata: {exc}") from exc
    if version > FORMAT_VERSION:
        raise CheckpointError(
            f"{path} was written in hai format {version} by hai {header.get('hai_version', '?')}; "
            f"this hai-shared reads formats up to {FORMAT_VERSION}",
            hint="upgrade hai-shared to load it",
        )
    return dict(header)


def load_checkpoint(
    path: str | os.PathLike[str],
    *,
    framework: Literal["auto", "torch", "numpy"] = "auto",
    device: str = "cpu",
) -> Checkpoint:
    """Load a checkpoint written by :func:`save_checkpoint`.

    ``framework="auto"`` returns torch tensors when torch is installed, else numpy arrays.
    Raises :class:`CheckpointError` for a missing, malformed or too new file.
    """
    path = Path(path)
    if framework not in ("auto", "torch", "numpy"):
        raise CheckpointError(f"framework must be 'auto', 'torch' or 'numpy', not {framework!r}")
    if framework == "auto":
        framework = "torch" if optional("torch") is not None else "numpy"
    if framework == "torch":
        require("torch", extra="torch")
    if path.is_dir():
        raise CheckpointError(f"checkpoint {path} is a folder, not a file")
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt" if framework == "torch" else "np", device=device) as f:
            header = _check_header((f.metadata() or {}).get(_META_KEY), path)
            tensors = {name: f.get_tensor(name) for name in f.keys()}  # noqa: SIM118
    except CheckpointError:
        raise
    except Exception as exc:  # safetensors raises its own error types for corrupt files
        raise CheckpointError(f"{path} is not a readable safetensors checkpoint: {exc}") from exc
    return Checkpoint(
        tensors=tensors,
        config=dict(header.get("config") or {}),
        seed=header.get("seed"),
        extra=dict(header.get("extra") or {}),
        hai_version=str(header.get("hai_version", "")),
        created=str(header.get("created", "")),
        format_version=int(header["format_version"]),
    )


def save_results(
    path: str | os.PathLike[str],
    results: Mapping[str, Any],
    *,
    config: Mapping[str, Any] | None = None,
    seed: int | None = None,
) -> Path:
    """Save a JSON-able mapping of results with the same metadata as a checkpoint, atomically."""
    return write_json(path, {_META_KEY: _header(config, seed, None), "results": dict(results)})


def load_results(path: str | os.PathLike[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Return ``(results, metadata)`` from a file written by :func:`save_results`."""
    path = Path(path)
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise CheckpointError(f"results file {path} does not exist") from exc
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"{path} is not a readable JSON results file: {exc}") from exc
    if not isinstance(document, dict) or "results" not in document:
        raise CheckpointError(f"{path} is not a hai results file (no 'results' key)")
    header = _check_header(json.dumps(document.get(_META_KEY)) if _META_KEY in document else None, path)
    return dict(document["results"]), header
