"""Checking, before any expensive step, that a run can write where it will write.

A training run writes the registry (``registry.root_dir``) and the plots (``plots.dir``); a
score run may write ``--output``. Finding out that one of them is unusable after the whole run
wastes the run, so the run starts with these checks: each walks the path, refuses a file where
a folder is expected (or a folder where the CSV goes), and creates and removes an unnamed
temporary file with one byte in the nearest existing folder. That is what really fails on a
read-only or immutable folder, or a full disk, also for root (whom permission bits never stop),
and it leaves nothing behind: folders are created later, by the write itself.
"""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path

__all__ = ["DestinationError", "check_folder", "check_output_file"]


class DestinationError(OSError):
    """A folder or file the run must write cannot be written (status ``registry-error``).

    ``errno`` is the OS's when there is one; the path and the fix are in the message.
    """


def _error(message: str, code: int | None) -> DestinationError:
    error = DestinationError(message)
    error.errno = code
    return error


def check_folder(path: Path, setting: str, *, value: Path | None = None) -> None:
    """Check that files can be written in the folder ``path``, creating nothing.

    Parameters
    ----------
    path:
        The folder (absolute); it may not exist yet.
    setting:
        Where the path comes from, for the message, e.g. ``"registry.root_dir"``.
    value:
        What ``setting`` holds when that is not the folder itself (the file of ``--output``);
        default ``path``.

    Raises
    ------
    DestinationError
        ``path`` or one of its parents is a file, or the nearest existing folder refuses a new
        file (read-only, immutable, no space, no permission).
    """
    shown = path if value is None else value
    existing = path
    while not os.path.lexists(existing) and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        what = (
            f"{setting} {shown}"
            if existing == shown
            else f"{existing}, a parent of {setting} {shown},"
        )
        kind = "a file" if existing.is_file() else "a broken link"
        place = "a folder" if value is None else "a path in a folder"
        raise _error(
            f"{what} is {kind}, not a folder; move it away, or set {setting} to {place}.",
            errno.ENOTDIR,
        )
    try:
        with tempfile.TemporaryFile(dir=existing, buffering=0) as probe:
            probe.write(b"\0")
    except OSError as exc:
        raise _error(
            f"{setting} {shown} cannot be written: {exc.strerror or exc} in {existing}. Make the "
            f"folder writable or free space on its disk, or set {setting} to a writable folder.",
            exc.errno,
        ) from exc


def check_output_file(path: Path, setting: str = "--output") -> None:
    """Check that the file ``path`` can be written (replaced if it exists), creating nothing.

    Parameters
    ----------
    path:
        The file to write; it may not exist yet.
    setting:
        Where the path comes from, for the message. Default ``"--output"``.

    Raises
    ------
    DestinationError
        ``path`` exists and is not a regular file (a folder, a device such as ``/dev/full``),
        or its folder fails :func:`check_folder`.
    """
    path = Path(path).absolute()
    if os.path.lexists(path) and not path.is_file():
        kind = "a folder" if path.is_dir() else "not a regular file"
        raise _error(
            f"{setting} {path} is {kind}; give the path of a CSV file to create or replace, "
            f"e.g. {path / 'levels.csv' if path.is_dir() else 'levels.csv'}.",
            errno.EISDIR if path.is_dir() else errno.EINVAL,
        )
    check_folder(path.parent, setting, value=path)
