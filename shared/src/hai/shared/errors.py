"""Errors that users can act on.

Every error a user can fix by changing their input derives from :class:`HaiError`. The
``hai`` command prints such an error as one message (plus its hint) and exits with status 2;
anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class HaiError(Exception):
    """An error caused by the user's input or environment, with advice on what to do.

    >>> err = HaiError("unknown material 'Foo'", hint="known: SiO2, TiO2")
    >>> str(err)
    "unknown material 'Foo' (known: SiO2, TiO2)"
    """

    exit_code = 2

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class InputError(HaiError, ValueError):
    """A value, shape, option or file content that the function cannot accept."""


class DeviceError(HaiError):
    """A compute device that is unknown or not available on this machine."""


class CheckpointError(HaiError):
    """A checkpoint or result file that cannot be read: missing, malformed or too new."""


class MissingPackageError(HaiError, ImportError):
    """An optional distribution or extra that the requested feature needs is not installed."""


class OutputError(HaiError):
    """A result file that cannot be written: no permission, a folder in the way, a full disk."""


class NotConvergedError(HaiError):
    """An iterative solver stopped before meeting its tolerance."""
