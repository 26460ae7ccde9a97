"""Crafted files through every photonics loader and CLI command that reads files (issue 12).

The loaders: ``load_dataset`` (manifest + safetensors shards), ``generate_dataset`` resuming in an
existing folder, ``register_csv``, and the CLI commands that read targets (``.safetensors`` or a
data set folder), libraries and designs files (``baseline``, ``evaluate``, ``dataset``).
Crafted: pickles disguised as ``.safetensors`` (whose ``__reduce__`` would create a marker
file), ``torch.save`` archives, safetensors with wrong shapes, dtypes, token ids or absurd
declared header sizes and offsets, corrupt, truncated and hostile JSON manifests (shard names
that leave the folder). Each must give a clear HaiError (exit status 2, one line), execute
nothing (no marker file) and write nothing.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import struct
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import save_file

from hai.photonics import load_dataset, register_csv
from hai.photonics.dataset import generate_dataset
from hai.shared import HaiError, load_checkpoint, save_checkpoint
from hai.shared.cli import main

MARKER_NAME = "PWNED"


class _Payload:
    """Unpickling this creates a marker file: proof that a loader unpickled it."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.makedirs, (self.marker,))


def pickle_bytes(marker: Path) -> bytes:
    return pickle.dumps({"spectra": _Payload(marker)})


def torch_save_bytes(marker: Path, tmp: Path) -> bytes:
    path = tmp / "torch.pt"
    torch.save({"spectra": torch.zeros(2, 3, 171), "payload": _Payload(marker)}, path)
    data = path.read_bytes()
    path.unlink()
    return data


def safetensors_with_header(
    header: dict[str, Any] | bytes, declared: int | None = None, body: bytes = b""
) -> bytes:
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    size = len(raw) if declared is None else declared
    return struct.pack("<Q", size) + raw + body


def one_line_exit_2(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    try:
        status = main(argv)
    except SystemExit as exc:
        status = int(exc.code or 0)
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert status == 2, (status, captured.err)
    assert len(err) == 1, err
    assert "Traceback" not in captured.err
    return err[0]


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def clean_library(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("seclib") / "lib"
    generate_dataset(out, 20, seed=5, shard_size=10, progress_bar=False)
    return out


@pytest.fixture
def work(tmp_path: Path, clean_library: Path) -> Path:
    shutil.copytree(clean_library, tmp_path / "lib")
    spectra = load_dataset(clean_library).spectra[:2].float().contiguous()
    save_file({"spectra": spectra}, str(tmp_path / "ok.safetensors"))
    (tmp_path / "designs.txt").write_text("SiO2_100\nAg_20\n", encoding="utf-8")
    return tmp_path


def crafted_safetensors(marker: Path, tmp: Path) -> dict[str, bytes]:
    """Files that claim to be .safetensors and are not (or not what a loader may accept)."""
    files = {
        "pickle": pickle_bytes(marker),
        "torch.save archive": torch_save_bytes(marker, tmp),
        "empty": b"",
        "truncated length": b"\x10\x00\x00",
        "header size 2^63": safetensors_with_header({"spectra": {}}, declared=2**63),
        "header size 1e12": safetensors_with_header({"spectra": {}}, declared=10**12),
        "header size past the end": safetensors_with_header({"a": 1}, declared=4096),
        "header not JSON": safetensors_with_header(b"\x80\x03}q\x00."),
        "offsets past the end": safetensors_with_header(
            {"spectra": {"dtype": "F32", "shape": [10**12, 3, 171], "data_offsets": [0, 2052 * 10**12]}}
        ),
        "shape and bytes disagree": safetensors_with_header(
            {"spectra": {"dtype": "F32", "shape": [1000, 3, 171], "data_offsets": [0, 16]}}, body=b"\0" * 16
        ),
        "unknown dtype": safetensors_with_header(
            {"spectra": {"dtype": "PICKLE", "shape": [1], "data_offsets": [0, 4]}}, body=b"\0" * 4
        ),
    }
    for name, data in (
        ("wrong rank", torch.zeros(2, 513)),
        ("four channels", torch.zeros(2, 4, 171)),
        ("wrong width", torch.zeros(2, 3, 170)),
        ("integer dtype", torch.zeros(2, 3, 171, dtype=torch.int64)),
        ("bool dtype", torch.zeros(2, 3, 171, dtype=torch.bool)),
        ("complex values", torch.zeros(2, 3, 171, dtype=torch.complex64)),
        ("NaN", torch.full((2, 3, 171), float("nan"))),
        ("huge values", torch.full((2, 3, 171), 1e30)),
    ):
        path = tmp / "t.safetensors"
        save_file({"spectra": data}, str(path))
        files[name] = path.read_bytes()
    path = tmp / "t.safetensors"
    save_file({"other": torch.zeros(2, 3, 171)}, str(path))
    files["no spectra tensor"] = path.read_bytes()
    path.unlink()
    return files


# -- .safetensors targets ---------------------------------------------------------------------


@pytest.mark.parametrize("command", ["baseline", "evaluate"])
def test_crafted_target_files_are_refused(
    capsys: pytest.CaptureFixture[str], work: Path, command: str
) -> None:
    marker = work / MARKER_NAME
    crafted = crafted_safetensors(marker, work)
    assert not marker.exists()  # building the payloads ran nothing
    for name, data in crafted.items():
        target = work / "targets.safetensors"
        target.write_bytes(data)
        before = snapshot(work)
        argv = (
            [
                "photonics",
                "baseline",
                "--library",
                str(work / "lib"),
                "--targets",
                str(target),
                "--out",
                str(work / "o.txt"),
            ]
            if command == "baseline"
            else ["photonics", "evaluate", "--targets", str(target), "--designs", str(work / "designs.txt")]
        )
        line = one_line_exit_2(capsys, argv)
        assert "targets.safetensors" in line, (name, line)
        assert not marker.exists(), name
        assert snapshot(work) == before, name  # nothing written


# -- data set folders: shards -----------------------------------------------------------------


def test_crafted_shards_are_refused_by_load_dataset_and_the_cli(
    capsys: pytest.CaptureFixture[str], work: Path
) -> None:
    marker = work / MARKER_NAME
    shard = work / "lib" / "shard-00001.safetensors"
    good = shard.read_bytes()
    for name, data in crafted_safetensors(marker, work).items():
        shard.write_bytes(data)
        with pytest.raises(HaiError) as info:
            load_dataset(work / "lib")
        assert "\n" not in str(info.value), name
        assert "shard-00001.safetensors" in str(info.value), (name, str(info.value))
        before = snapshot(work)
        one_line_exit_2(
            capsys,
            [
                "photonics",
                "baseline",
                "--library",
                str(work / "lib"),
                "--targets",
                str(work / "ok.safetensors"),
            ],
        )
        one_line_exit_2(
            capsys,
            ["photonics", "evaluate", "--targets", str(work / "lib"), "--designs", str(work / "designs.txt")],
        )
        assert snapshot(work) == before, name
        assert not marker.exists(), name
    shard.write_bytes(good)
    assert len(load_dataset(work / "lib")) == 20


def _rewrite_shard(path: Path, **replace: torch.Tensor) -> None:
    ckpt = load_checkpoint(path, framework="torch")
    tensors = {**ckpt.tensors, **replace}
    save_checkpoint(path, tensors, config=ckpt.config, seed=ckpt.seed)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"tokens": torch.full((10, 21), -1, dtype=torch.int64)}, "outside the vocabulary"),
        ({"tokens": torch.full((10, 21), 10**9, dtype=torch.int64)}, "outside the vocabulary"),
        ({"tokens": torch.zeros(10, 21, dtype=torch.float32)}, "tokens must be int64"),
        ({"tokens": torch.zeros(10, 5, dtype=torch.int64)}, "tokens must be int64 of shape (10, 21)"),
        ({"spectra": torch.zeros(7, 3, 171, dtype=torch.float16)}, "the manifest says 10"),
        ({"spectra": torch.zeros(10, 3, 99, dtype=torch.float16)}, "(T, 3, 171)"),
        ({"spectra": torch.zeros(10, 3, 171, dtype=torch.int16)}, "dtype int16"),
    ],
)
def test_shards_with_wrong_shapes_dtypes_or_ids(
    work: Path, change: dict[str, torch.Tensor], match: str
) -> None:
    _rewrite_shard(work / "lib" / "shard-00000.safetensors", **change)
    with pytest.raises(HaiError, match=match.replace("(", r"\(").replace(")", r"\)")):
        load_dataset(work / "lib")


def test_a_shard_without_hai_metadata_is_refused(work: Path) -> None:
    # a plain safetensors file with the right tensors but no hai header
    ds = load_dataset(work / "lib")
    save_file(
        {"spectra": ds.spectra[:10].contiguous(), "tokens": ds.tokens[:10].contiguous()},
        str(work / "lib" / "shard-00000.safetensors"),
    )
    with pytest.raises(HaiError, match="not a hai checkpoint"):
        load_dataset(work / "lib")


def test_resuming_over_a_pickle_shard_runs_nothing_and_replaces_it(work: Path) -> None:
    marker = work / MARKER_NAME
    shard = work / "lib" / "shard-00001.safetensors"
    expected = load_dataset(work / "lib")
    manifest = json.loads((work / "lib" / "manifest.json").read_text(encoding="utf-8"))
    manifest["complete"] = False
    (work / "lib" / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    shard.write_bytes(pickle_bytes(marker))
    info = generate_dataset(work / "lib", 20, seed=5, shard_size=10, progress_bar=False)
    assert not marker.exists()
    assert info.generated_shards == 1  # the crafted shard was regenerated, not trusted
    again = load_dataset(work / "lib")
    assert torch.equal(again.tokens, expected.tokens)
    assert torch.equal(again.spectra, expected.spectra)


# -- data set folders: manifests --------------------------------------------------------------


def _manifest_cases(good: dict[str, Any]) -> dict[str, bytes]:
    def variant(**changes: Any) -> bytes:
        return json.dumps({**good, **changes}).encode()

    text = json.dumps(good).encode()
    shards = good["shards"]
    return {
        "empty": b"",
        "truncated": text[: len(text) // 2],
        "not JSON": b"this is not json",
        "not UTF-8": b"\xff\xfe\x00{",
        "a pickle": pickle.dumps({"format": "hai-photonics-dataset"}),
        "a list": b"[1, 2, 3]",
        "nested 100000 deep": b"[" * 100_000,
        "foreign format": variant(format="something-else"),
        "future version": variant(format_version=99),
        "version as text": variant(format_version="1"),
        "incomplete": variant(complete=False),
        "no shards": variant(shards=[]),
        "shards not a list": variant(shards="shard-00000.safetensors"),
        "shard name leaves the folder": variant(
            shards=[{"file": "../outside.safetensors", "n": 10}, shards[1]]
        ),
        "absolute shard path": variant(shards=[{"file": "/etc/passwd", "n": 10}, shards[1]]),
        "shard name in a subfolder": variant(
            shards=[{"file": "sub/shard-00000.safetensors", "n": 10}, shards[1]]
        ),
        "shard n as text": variant(shards=[{"file": shards[0]["file"], "n": "10"}, shards[1]]),
        "shard n negative": variant(shards=[{"file": shards[0]["file"], "n": -10}, shards[1]]),
        "shard n wrong": variant(shards=[{"file": shards[0]["file"], "n": 11}, shards[1]]),
        "missing shard file": variant(shards=[*shards, {"file": "shard-00099.safetensors", "n": 10}]),
        "seed as text": variant(seed="5"),
        "vocabulary not an object": variant(vocabulary=[1, 2]),
        "vocabulary missing keys": variant(vocabulary={"materials": ["SiO2"]}),
        "vocabulary with a bad material": variant(
            vocabulary={**good["vocabulary"], "materials": ["SiO2", "Bad_Name"]}
        ),
        "config missing wavelengths": variant(config={"name": "x"}),
        "config with unknown keys": variant(config={**good["config"], "exec": "import os"}),
    }


def test_crafted_manifests_are_refused(capsys: pytest.CaptureFixture[str], work: Path) -> None:
    manifest = work / "lib" / "manifest.json"
    good = json.loads(manifest.read_text(encoding="utf-8"))
    (work / "outside.safetensors").write_bytes((work / "lib" / "shard-00000.safetensors").read_bytes())
    for name, data in _manifest_cases(good).items():
        manifest.write_bytes(data)
        with pytest.raises(HaiError) as info:
            load_dataset(work / "lib")
        assert "\n" not in str(info.value), name
        before = snapshot(work)
        one_line_exit_2(
            capsys,
            [
                "photonics",
                "baseline",
                "--library",
                str(work / "lib"),
                "--targets",
                str(work / "ok.safetensors"),
            ],
        )
        assert snapshot(work) == before, name


@pytest.mark.parametrize("case", ["truncated", "not JSON", "a list", "a pickle", "nested 100000 deep"])
def test_dataset_command_refuses_to_overwrite_a_corrupt_manifest(
    capsys: pytest.CaptureFixture[str], work: Path, case: str
) -> None:
    manifest = work / "lib" / "manifest.json"
    good = json.loads(manifest.read_text(encoding="utf-8"))
    manifest.write_bytes(_manifest_cases(good)[case])
    before = snapshot(work / "lib")
    one_line_exit_2(
        capsys,
        [
            "photonics",
            "dataset",
            "--n",
            "20",
            "--shard-size",
            "10",
            "--seed",
            "5",
            "--out",
            str(work / "lib"),
        ],
    )
    assert snapshot(work / "lib") == before


# -- designs files and material tables --------------------------------------------------------


def test_crafted_designs_files_are_refused(capsys: pytest.CaptureFixture[str], work: Path) -> None:
    marker = work / MARKER_NAME
    for suffix, data in (
        (".txt", pickle_bytes(marker)),
        (".json", pickle_bytes(marker)),
        (".json", b'{"designs": [{"__class__": "os.system"}]}'),
        (".txt", b"TiO2_60 ../../etc/passwd\n"),
        (".txt", b"Unobtainium_50\n"),
    ):
        designs = work / f"designs{suffix}"
        designs.write_bytes(data)
        one_line_exit_2(
            capsys,
            ["photonics", "evaluate", "--targets", str(work / "ok.safetensors"), "--designs", str(designs)],
        )
        assert not marker.exists()


@pytest.mark.parametrize(
    "content",
    [
        b"\x80\x04\x95pickle\x00\xff",
        b"wavelength_nm,n,k\n400,nan,0\n800,1.5,0\n",
        b"wavelength_nm,n,k\n400,1e400,0\n800,1.5,0\n",
        b"wavelength_nm,n,k\n400,2,0\n",
        b"400,2,0,9\n800,1.5,0,9\n",
    ],
)
def test_crafted_material_tables_are_refused(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "m.csv"
    path.write_bytes(content)
    with pytest.raises(HaiError) as info:
        register_csv("CraftedFilm", path, overwrite=True)
    assert "\n" not in str(info.value)
