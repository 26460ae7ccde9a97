"""Atomic file writes: a write that fails or is interrupted leaves the old file whole.

The content goes to a temporary file in the target's folder, is flushed to disk, replaces the
target with :func:`os.replace` (atomic on POSIX and Windows), and the folder is flushed so the
rename survives a power cut. The new file gets the mode an ordinary ``open`` would give it
(0666 less the umask), or the mode of the file it replaces. The temporary file is removed on
any failure, and operating-system errors (no permission, a folder where the file should be, a
full disk, a file size limit) become one :class:`~hai.shared.errors.OutputError`.

:func:`atomic_path` is the same for libraries that write to a path themselves (matplotlib's
``savefig``, pandas' ``to_csv``, uproot): they write to the temporary path it yields.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, Literal, overload

from hai.shared.errors import OutputError

_REASONS = {
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.EROFS: "the file system is read-only",
    errno.ENOSPC: "the disk is full",
    errno.EDQUOT: "the disk quota is exceeded",
    errno.EFBIG: "the file is larger than the allowed file size (ulimit -f)",
    errno.EISDIR: "it is a folder",
    errno.ENOTDIR: "a part of the path is a file, not a folder",
    errno.ENAMETOOLONG: "the name is too long",
}


def output_error(path: str | os.PathLike[str], exc: OSError) -> OutputError:
    """A one-line :class:`OutputError` for an OS error met while writing ``path``."""
    reason = _REASONS.get(exc.errno or 0, exc.strerror or str(exc))
    return OutputError(
        f"cannot write {os.fspath(path)}: {reason}",
        hint="choose another output path, or free the space or permission it needs",
    )


def check_output_path(path: str | os.PathLike[str] | None) -> None:
    """Refuse, before any work, an output path that cannot become a file (:class:`OutputError`).

    A folder where the file should be, or a file where one of its folders should be; ``None``
    or ``""`` (no output asked for) passes. The atomic writers make the same check when writing.

    >>> check_output_path(None)
    >>> import tempfile
    >>> check_output_path(tempfile.gettempdir())
    Traceback (most recent call last):
    hai.shared.errors.OutputError: cannot write ...: it is a folder (give a file name, not a folder)
    """
    if path is None or os.fspath(path) == "":
        return
    _check_target(Path(path))


def _check_target(path: Path) -> None:
    if path.is_dir():
        raise OutputError(f"cannot write {path}: it is a folder", hint="give a file name, not a folder")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise OutputError(
                    f"cannot write {path}: {parent} is a file, not a folder",
                    hint="choose an output path whose folders are folders",
                )
            break


def _new_file_mode(path: Path) -> int:
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def _fsync_folder(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # some platforms (Windows) cannot open folders
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; it replaces ``path`` when the block completes.

    For libraries that write to a file name themselves. A failure inside the block (or a
    library that wrote nothing) leaves an existing ``path`` as it was.

    >>> import tempfile, pathlib
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "table.csv"
    >>> with atomic_path(target) as tmp:
    ...     _ = tmp.write_text("a,b")
    >>> target.read_text()
    'a,b'
    """
    target = Path(path)
    _check_target(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as exc:
        raise output_error(target, exc) from None
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        if not tmp.exists():
            raise OutputError(f"nothing was written to {target}")
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp, _new_file_mode(target))
        os.replace(tmp, target)
        _fsync_folder(target.parent)
    except OSError as exc:
        raise output_error(target, exc) from None
    finally:
        tmp.unlink(missing_ok=True)


@overload
def atomic_write(
    path: str | os.PathLike[str], mode: Literal["w"] = "w"
) -> contextlib.AbstractContextManager[IO[str]]: ...
@overload
def atomic_write(
    path: str | os.PathLike[str], mode: Literal["wb"]
) -> contextlib.AbstractContextManager[IO[bytes]]: ...
def atomic_write(path: str | os.PathLike[str], mode: str = "w") -> Any:
    """Open ``path`` for writing so that it is replaced only when the block completes.

    >>> import tempfile, pathlib
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "out.txt"
    >>> with atomic_write(target) as fh:
    ...     _ = fh.write("done")
    >>> target.read_text()
    'done'
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_write supports modes 'w' and 'wb', not {mode!r}")
    return _atomic_write(Path(path), mode)


@contextlib.contextmanager
def _atomic_write(path: Path, mode: str) -> Iterator[IO[Any]]:
    with atomic_path(path) as tmp:
        try:
            encoding = None if "b" in mode else "utf-8"
            with open(tmp, mode, encoding=encoding) as fh:
                yield fh
                fh.flush()
        except OSError as exc:
            raise output_error(path, exc) from None


def write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically and return the path."""
    with atomic_write(path, "wb") as fh:
        fh.write(data)
    return Path(path)


def write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically and return the path."""
    with atomic_write(path, "w") as fh:
        fh.write(text)
    return Path(path)


def write_json(path: str | os.PathLike[str], data: Any, *, indent: int = 2) -> Path:
    """Write ``data`` as JSON atomically; NaN and infinities are written as ``null``."""
    return write_text(path, json.dumps(to_jsonable(data), indent=indent, allow_nan=False) + "\n")


def to_jsonable(value: Any) -> Any:
    """Turn numpy/torch scalars and arrays, paths and non-finite floats into plain JSON values."""
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    if isinstance(value, float):
        return value if value == value and value not in (float("inf"), float("-inf")) else None
    if isinstance(value, bool | int | str) or value is None:
        return value
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    tolist = getattr(value, "tolist", None)  # numpy and torch scalars/arrays
    if callable(tolist):
        return to_jsonable(tolist())
    raise TypeError(f"cannot write {type(value).__name__} as JSON")
