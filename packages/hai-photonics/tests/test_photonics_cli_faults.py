"""``hai photonics`` under bad input (issue 20): exit status 2, one line on stderr, no damage.

Non-finite or out-of-range spectra in targets and libraries, sizes the machine cannot hold,
unchecked numbers, and output paths that are folders or files in the way each give one line on
stderr and exit status 2; nothing is written and an existing file is left as it was.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from hai.photonics import load_dataset
from hai.photonics.dataset import estimate_dataset_bytes, generate_dataset
from hai.shared import InputError
from hai.shared.cli import main


def fails_with_one_line(capsys: pytest.CaptureFixture[str], argv: list[str], match: str) -> str:
    """Run ``hai`` in-process: exit status 2, one line on stderr that contains ``match``."""
    try:
        status = main(argv)
    except SystemExit as exc:  # argparse's usage errors
        status = int(exc.code or 0)
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2, err
    assert len(err) == 1, err
    assert match.lower() in err[0].lower(), err[0]
    return err[0]


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("lib") / "lib"
    generate_dataset(out, 24, seed=3, shard_size=12, progress_bar=False)
    return out


@pytest.fixture
def work(tmp_path: Path, library: Path) -> Path:
    """A folder with a library copy, good targets and designs."""
    shutil.copytree(library, tmp_path / "lib")
    spectra = load_dataset(library).spectra[:3].float()
    save_file({"spectra": spectra.contiguous()}, str(tmp_path / "ok.safetensors"))
    (tmp_path / "designs.txt").write_text("TiO2_60 SiO2_100\nAg_20\nSiO2_100\n", encoding="utf-8")
    return tmp_path


# -- spectra that are not fractions of light --------------------------------------------------


@pytest.mark.parametrize(
    ("value", "match"),
    [
        (float("nan"), "nan or infinite"),
        (float("inf"), "nan or infinite"),
        (1.5, "outside [0, 1]"),
        (-0.2, "outside"),
    ],
)
@pytest.mark.parametrize("command", ["baseline", "evaluate"])
def test_bad_spectra_name_the_file_and_the_row(
    capsys: pytest.CaptureFixture[str], work: Path, value: float, match: str, command: str
) -> None:
    spectra = load_dataset(work / "lib").spectra[:3].float().clone()
    spectra[2, 1, 17] = value
    bad = work / "bad.safetensors"
    save_file({"spectra": spectra}, str(bad))
    out = work / "designs-out.txt"
    argv = (
        ["photonics", "baseline", "--library", str(work / "lib"), "--targets", str(bad), "--out", str(out)]
        if command == "baseline"
        else ["photonics", "evaluate", "--targets", str(bad), "--designs", str(work / "designs.txt")]
    )
    line = fails_with_one_line(capsys, argv, match)
    assert str(bad) in line
    assert "row 2" in line
    assert "A at wavelength index 17" in line
    assert not out.exists()


def test_bad_spectra_in_a_library_shard_name_the_shard(
    capsys: pytest.CaptureFixture[str], work: Path
) -> None:
    from hai.shared import load_checkpoint, save_checkpoint

    shard = work / "lib" / "shard-00001.safetensors"
    ckpt = load_checkpoint(shard, framework="torch")
    spectra = ckpt.tensors["spectra"].clone()
    spectra[4, 0, 0] = float("nan")
    save_checkpoint(
        shard, {"spectra": spectra, "tokens": ckpt.tensors["tokens"]}, config=ckpt.config, seed=ckpt.seed
    )
    line = fails_with_one_line(
        capsys,
        ["photonics", "baseline", "--library", str(work / "lib"), "--targets", str(work / "ok.safetensors")],
        "row 4",
    )
    assert "shard-00001.safetensors" in line


def test_the_api_refuses_bad_spectra_too() -> None:
    from hai.photonics import TemplateBaseline, evaluate

    spectra = torch.full((2, 3, 171), 0.3)
    spectra[1, 2, 5] = float("nan")
    with pytest.raises(InputError, match="targets: spectra row 1"):
        evaluate(spectra, ["SiO2_100", "SiO2_100"])
    with pytest.raises(InputError, match="library spectra: spectra row 1"):
        TemplateBaseline().fit(spectra, torch.zeros(2, 21, dtype=torch.int64))
    model = TemplateBaseline().fit(torch.full((2, 3, 171), 0.3), torch.zeros(2, 21, dtype=torch.int64))
    with pytest.raises(InputError, match="targets: spectra row 1"):
        model.match(spectra)


# -- sizes the machine cannot hold ------------------------------------------------------------


def test_a_trillion_stacks_are_refused_up_front(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    out = tmp_path / "huge"
    line = fails_with_one_line(
        capsys, ["photonics", "dataset", "--n", "1000000000000", "--out", str(out)], "would"
    )
    assert "PB" in line or "TB" in line  # says what it would need
    assert not out.exists()  # no manifest, no folder


def test_the_size_estimate_adds_up() -> None:
    # 171 wavelengths x 3 x float16 + 21 tokens x int64 = 1194 bytes a stack, plus headers
    need = estimate_dataset_bytes(1_000_000, 100_000, 171, 21)
    assert 1_194_000_000 <= need["disk"] <= 1_194_000_000 + 200_000
    assert need["memory"] >= 100_000 * 1194  # at least one shard is held in memory
    huge_shard = estimate_dataset_bytes(10**10, 10**10, 171, 21)
    assert huge_shard["memory"] > 10**13  # one shard of 1e10 stacks: refused by check_memory


def test_a_shard_larger_than_memory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="memory"):
        generate_dataset(tmp_path / "big", 10**10, shard_size=10**10, progress_bar=False)
    assert not (tmp_path / "big").exists()


# -- unchecked numbers ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "match"),
    [
        (["dataset", "--n", "0", "--out", "{tmp}/d"], "--n"),
        (["dataset", "--n", "-4", "--out", "{tmp}/d"], "--n"),
        (["dataset", "--n", "2.5", "--out", "{tmp}/d"], "--n"),
        (["dataset", "--n", "10", "--shard-size", "0", "--out", "{tmp}/d"], "--shard-size"),
        (["dataset", "--n", "10", "--seed", "-1", "--out", "{tmp}/d"], "--seed"),
        (["simulate", "TiO2_60", "--angle", "nan"], "--angle"),
        (["simulate", "TiO2_60", "--angle", "inf"], "--angle"),
        (["simulate", "TiO2_60", "--angle", "95"], "[0, 90)"),
        (["simulate", "TiO2_60", "--angle", "-1"], "[0, 90)"),
        (["simulate", "TiO2_60", "--pol", "x"], "polarisation"),
        (["simulate", "TiO2_60", "--preset", "nope"], "--preset"),
        (["simulate", "Unobtainium_60"], "material"),
    ],
)
def test_bad_numbers_and_names(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, argv: list[str], match: str
) -> None:
    fails_with_one_line(capsys, ["photonics", *[a.format(tmp=tmp_path) for a in argv]], match)
    assert list(tmp_path.iterdir()) == []  # nothing written


# -- output paths in the way ------------------------------------------------------------------


def test_dataset_out_is_a_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    target = tmp_path / "notes.txt"
    target.write_text("keep me", encoding="utf-8")
    fails_with_one_line(capsys, ["photonics", "dataset", "--n", "5", "--out", str(target)], "not a folder")
    fails_with_one_line(
        capsys, ["photonics", "dataset", "--n", "5", "--out", str(target / "sub")], "not a folder"
    )
    assert target.read_text(encoding="utf-8") == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_dataset_over_a_corrupt_manifest_leaves_it(capsys: pytest.CaptureFixture[str], work: Path) -> None:
    manifest = work / "lib" / "manifest.json"
    manifest.write_bytes(b'{"format": "hai-photonics-dataset", "n": 2')  # truncated
    before = snapshot(work / "lib")
    fails_with_one_line(
        capsys,
        [
            "photonics",
            "dataset",
            "--n",
            "24",
            "--shard-size",
            "12",
            "--seed",
            "3",
            "--out",
            str(work / "lib"),
        ],
        "not valid JSON",
    )
    assert snapshot(work / "lib") == before


@pytest.mark.parametrize("command", ["simulate", "baseline", "evaluate"])
def test_output_paths_that_are_folders(capsys: pytest.CaptureFixture[str], work: Path, command: str) -> None:
    folder = work / "taken"
    folder.mkdir()
    (folder / "inside.txt").write_text("old", encoding="utf-8")
    argv = {
        "simulate": ["photonics", "simulate", "TiO2_60", "--plot", str(folder)],
        "baseline": [
            "photonics", "baseline", "--library", str(work / "lib"),
            "--targets", str(work / "ok.safetensors"), "--out", str(folder),
        ],
        "evaluate": [
            "photonics", "evaluate", "--targets", str(work / "ok.safetensors"), "--designs",
            str(work / "designs.txt"), "--plot", str(folder),
        ],
    }[command]  # fmt: skip
    if command != "baseline":
        pytest.importorskip("matplotlib")
    fails_with_one_line(capsys, argv, "folder")
    assert [p.name for p in folder.iterdir()] == ["inside.txt"]
    assert (folder / "inside.txt").read_text(encoding="utf-8") == "old"


def test_baseline_out_keeps_the_old_file_when_the_command_fails(
    capsys: pytest.CaptureFixture[str], work: Path
) -> None:
    old = work / "designs-out.txt"
    old.write_text("old designs\n", encoding="utf-8")
    spectra = torch.full((2, 3, 171), 0.2)
    spectra[0, 0, 0] = float("nan")
    save_file({"spectra": spectra}, str(work / "nan.safetensors"))
    fails_with_one_line(
        capsys,
        [
            "photonics",
            "baseline",
            "--library",
            str(work / "lib"),
            "--targets",
            str(work / "nan.safetensors"),
            "--out",
            str(old),
        ],
        "row 0",
    )
    assert old.read_text(encoding="utf-8") == "old designs\n"
    assert not [p.name for p in work.iterdir() if p.name.endswith(".tmp")]


# -- files that are not what they claim -------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (b"{bad", "not valid JSON"),
        (b'{"designs": 5}', "JSON list of stack strings"),
        (b"[1, 2, 3]", "JSON list of stack strings"),
        (b"\xff\xfe\x00", "UTF-8"),
        (b"[" * 100_000, "not valid JSON"),
    ],
)
def test_designs_files_that_are_not_designs(
    capsys: pytest.CaptureFixture[str], work: Path, content: bytes, match: str
) -> None:
    designs = work / "designs.json"
    designs.write_bytes(content)
    fails_with_one_line(
        capsys,
        ["photonics", "evaluate", "--targets", str(work / "ok.safetensors"), "--designs", str(designs)],
        match,
    )


def test_designs_path_is_a_folder(capsys: pytest.CaptureFixture[str], work: Path) -> None:
    fails_with_one_line(
        capsys,
        ["photonics", "evaluate", "--targets", str(work / "ok.safetensors"), "--designs", str(work)],
        "folder",
    )


def test_a_good_run_still_works(capsys: pytest.CaptureFixture[str], work: Path) -> None:
    out = work / "designs-out.txt"
    argv = [
        "photonics",
        "baseline",
        "--library",
        str(work / "lib"),
        "--targets",
        str(work / "ok.safetensors"),
    ]
    assert main([*argv, "--out", str(out), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["library_index"] == [0, 1, 2]  # the targets are the first three library spectra
    assert data["library_mae"] == [0.0, 0.0, 0.0]
    assert len(out.read_text(encoding="utf-8").splitlines()) == 3
