"""Crafted files through hai-shared's loaders: nothing is unpickled or executed, errors are clear."""

import json
import pickle
import struct
from pathlib import Path

import pytest

from hai.shared import CheckpointError, load_checkpoint, load_results, save_checkpoint


class _Payload:
    """Unpickling this would write a marker file: the tests check that it never appears."""

    marker: Path

    def __reduce__(self):
        return (Path.write_text, (self.marker, "pwned"))


def _safetensors(header: dict, body: bytes = b"") -> bytes:
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + body


def _crafted(tmp_path: Path) -> dict[str, bytes]:
    payload = _Payload()
    payload.marker = tmp_path / "marker"
    tensor = {"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}
    return {
        "pickle": pickle.dumps(payload),
        "torch-zip": b"PK\x03\x04" + pickle.dumps(payload),
        "empty": b"",
        "huge-header-length": struct.pack("<Q", 2**62) + b"{}",
        "huge-declared-shape": _safetensors(
            {"w": {"dtype": "F32", "shape": [10**12], "data_offsets": [0, 4 * 10**12]}}
        ),
        "offsets-past-the-end": _safetensors(tensor, b"\0" * 4),
        "unknown-dtype": _safetensors(
            {"w": {"dtype": "OBJ", "shape": [2], "data_offsets": [0, 8]}}, b"\0" * 8
        ),
        "not-hai": _safetensors(tensor, b"\0" * 8),
        "malformed-metadata": _safetensors({**tensor, "__metadata__": {"hai": "{not json"}}, b"\0" * 8),
        "newer-format": _safetensors(
            {**tensor, "__metadata__": {"hai": json.dumps({"format_version": 99})}}, b"\0" * 8
        ),
    }


@pytest.mark.parametrize("framework", ["numpy", "torch"])
def test_crafted_checkpoints_are_refused_and_nothing_runs(tmp_path: Path, framework: str):
    for name, data in _crafted(tmp_path).items():
        path = tmp_path / f"{name}.safetensors"
        path.write_bytes(data)
        with pytest.raises(CheckpointError) as info:
            load_checkpoint(path, framework=framework)
        assert "\n" not in str(info.value), name
        assert str(path) in str(info.value) or "format" in str(info.value), name
    assert not (tmp_path / "marker").exists()


def test_crafted_results_files_are_refused(tmp_path: Path):
    payload = _Payload()
    payload.marker = tmp_path / "marker"
    cases = {
        "pickle.json": pickle.dumps(payload),
        "truncated.json": b'{"results": {"a": 1',
        "list.json": b"[1, 2]",
        "no-results.json": b'{"hai": {}}',
        "newer.json": json.dumps({"hai": {"format_version": 99}, "results": {}}).encode(),
    }
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(CheckpointError):
            load_results(tmp_path / name)
    (tmp_path / "folder.json").mkdir()
    with pytest.raises(CheckpointError):
        load_results(tmp_path / "folder.json")
    assert not (tmp_path / "marker").exists()


def test_a_folder_is_not_a_checkpoint(tmp_path: Path):
    (tmp_path / "model.safetensors").mkdir()
    with pytest.raises(CheckpointError, match="is a folder"):
        load_checkpoint(tmp_path / "model.safetensors")


def test_a_good_checkpoint_still_loads(tmp_path: Path):
    import numpy as np

    save_checkpoint(tmp_path / "ok.safetensors", {"w": np.arange(3.0)}, config={"a": 1})
    loaded = load_checkpoint(tmp_path / "ok.safetensors", framework="numpy")
    np.testing.assert_array_equal(loaded.tensors["w"], [0.0, 1.0, 2.0])
