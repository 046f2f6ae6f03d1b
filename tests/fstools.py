"""Real file-system failures for tests, as root sees them (permission bits never stop root).

- :func:`immutable`: ``chattr +i`` on a folder: nothing can be created, renamed or removed in
  it, not even by root; undone when the block ends.
- :func:`full_disk`: a small tmpfs filled to the last byte, so writes fail with ENOSPC;
  unmounted when the block ends.

Each skips the test, with the reason, where the machine does not allow it (no ``chattr``, no
privilege to mount, a filesystem without attributes).
"""

from __future__ import annotations

import contextlib
import errno
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

FULL_DISK_BYTES = 256 * 1024


def _run(command: list[str], purpose: str) -> None:
    try:
        done = subprocess.run(command, capture_output=True, text=True)
    except FileNotFoundError:
        pytest.skip(f"needs {command[0]} to {purpose}")
    if done.returncode != 0:
        pytest.skip(f"cannot {purpose} here ({' '.join(command)}): {done.stderr.strip()}")


@contextlib.contextmanager
def immutable(folder: Path) -> Iterator[Path]:
    """Make ``folder`` immutable (``chattr +i``) for the duration of the block."""
    _run(["chattr", "+i", str(folder)], "make a folder immutable")
    try:
        yield folder
    finally:
        subprocess.run(["chattr", "-i", str(folder)], check=True)


@contextlib.contextmanager
def full_disk(parent: Path) -> Iterator[Path]:
    """A folder under ``parent`` on a tmpfs of 256 KiB that is completely full."""
    mount_point = parent / "full-disk"
    mount_point.mkdir()
    _run(
        ["mount", "-t", "tmpfs", "-o", f"size={FULL_DISK_BYTES}", "tmpfs", str(mount_point)],
        "mount a tmpfs to simulate a full disk",
    )
    try:
        with open(mount_point / "filler", "wb", buffering=0) as filler:
            try:
                while True:
                    filler.write(b"\0" * 4096)
            except OSError as exc:
                if exc.errno != errno.ENOSPC:  # ENOSPC is the point: the disk is full
                    raise
        yield mount_point
    finally:
        subprocess.run(["umount", str(mount_point)], check=True)
