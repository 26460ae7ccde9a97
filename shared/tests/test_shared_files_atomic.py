"""The atomic writer under failure: modes, file size limits, folders in the way, clean-up."""

import os
import resource
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from hai.shared import OutputError, atomic_path, atomic_write, write_text


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def test_new_file_gets_the_umask_mode_not_0600(tmp_path: Path):
    old = os.umask(0o022)
    try:
        write_text(tmp_path / "a.txt", "x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a.txt").stat().st_mode) == 0o644


def test_replaced_file_keeps_its_mode(tmp_path: Path):
    target = tmp_path / "a.txt"
    target.write_text("old")
    target.chmod(0o640)
    write_text(target, "new")
    assert target.read_text() == "new"
    assert stat.S_IMODE(target.stat().st_mode) == 0o640


def test_folder_in_place_of_the_file_is_one_line_error(tmp_path: Path):
    (tmp_path / "out").mkdir()
    with pytest.raises(OutputError, match="it is a folder"):
        write_text(tmp_path / "out", "x")
    assert _leftovers(tmp_path) == []


def test_file_in_place_of_a_folder_is_one_line_error(tmp_path: Path):
    (tmp_path / "file").write_text("keep")
    with pytest.raises(OutputError, match="is a file, not a folder"):
        write_text(tmp_path / "file" / "sub" / "out.txt", "x")
    assert (tmp_path / "file").read_text() == "keep"


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores folder permissions")
def test_unwritable_folder_is_one_line_error(tmp_path: Path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        with pytest.raises(OutputError, match="permission denied"):
            write_text(folder / "x.txt", "x")
    finally:
        folder.chmod(0o700)


def test_file_size_limit_keeps_the_old_file_and_no_temporary(tmp_path: Path):
    # A child process under `ulimit -f`: Python ignores SIGXFSZ, so the write fails with EFBIG.
    target = tmp_path / "pred.csv"
    target.write_text("old content\n")
    script = textwrap.dedent(
        f"""
        import resource, sys
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
        from hai.shared import OutputError, write_text
        try:
            write_text({str(target)!r}, "x" * 100_000)
        except OutputError as exc:
            print(exc)
            sys.exit(2)
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result.stderr
    assert "larger than the allowed file size" in result.stdout
    assert target.read_text() == "old content\n"
    assert _leftovers(tmp_path) == []
    assert resource.getrlimit(resource.RLIMIT_FSIZE)  # the parent is not limited


def test_atomic_path_for_libraries_that_write_by_name(tmp_path: Path):
    target = tmp_path / "fig.png"
    target.write_bytes(b"old")

    def library_fails() -> None:
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("the library failed")

    with pytest.raises(RuntimeError):
        library_fails()
    assert target.read_bytes() == b"old"
    assert _leftovers(tmp_path) == []
    with atomic_path(target) as tmp:
        tmp.write_bytes(b"new")
    assert target.read_bytes() == b"new"


def test_exception_inside_atomic_write_removes_the_temporary(tmp_path: Path):
    def crash() -> None:
        with atomic_write(tmp_path / "a.bin", "wb") as fh:
            fh.write(b"abc")
            raise KeyError("x")

    with pytest.raises(KeyError):
        crash()
    assert list(tmp_path.iterdir()) == []
