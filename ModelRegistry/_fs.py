"""Durable file primitives: write or copy while hashing, fsync files and folders.

A rename is only crash-safe if the data it publishes reached the disk first, so every file the
registry writes is flushed and fsynced, and so is every folder whose entries changed.
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import os
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

logger = logging.getLogger(__name__)

__all__ = [
    "can_sync_filesystem",
    "copy_synced",
    "fsync_dir",
    "replace_text_synced",
    "sha256_file",
    "sync_filesystem",
    "write_bytes_synced",
]

_CHUNK = 1 << 20


def _load_syncfs() -> Callable[[int], int] | None:
    """Linux's ``syncfs(fd)`` from the C library, or None where there is none."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        function = libc.syncfs
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int]
    function.restype = ctypes.c_int
    return function


_SYNCFS = _load_syncfs()


def sync_filesystem(path: Path) -> bool:
    """Flush every written file and folder entry of the file system holding ``path`` at once.

    One ``syncfs`` makes a whole version durable where an fsync per file and folder took a
    dozen flushes (~3 ms each here): what matters for the atomic rename is that everything
    is on disk before it, not in which order. Returns False where ``syncfs`` is unavailable
    (not Linux): callers then fsync each file and folder.

    Raises:
        OSError: the flush failed (e.g. an I/O error).
    """
    if _SYNCFS is None:
        return False
    descriptor = os.open(path, os.O_RDONLY)
    try:
        if _SYNCFS(descriptor) != 0:
            error = ctypes.get_errno()
            raise OSError(error, os.strerror(error), str(path))
    finally:
        os.close(descriptor)
    return True


def can_sync_filesystem() -> bool:
    """Whether :func:`sync_filesystem` works here (then per-file fsyncs can be left out)."""
    return _SYNCFS is not None


def write_bytes_synced(path: Path, data: bytes | bytearray, *, sync: bool = True) -> str:
    """Create ``path`` (it must not exist), write ``data``, fsync it (unless ``sync`` is
    False: the caller syncs the file system) and return its sha256 hex."""
    with open(path, "xb") as handle:
        handle.write(data)
        handle.flush()
        if sync:
            os.fsync(handle.fileno())
    return hashlib.sha256(data).hexdigest()


def copy_synced(source: Path, path: Path, *, sync: bool = True) -> str:
    """Copy ``source`` to a new file ``path`` in chunks, fsync it (unless ``sync`` is False)
    and return its sha256 hex."""
    digest = hashlib.sha256()
    with open(source, "rb") as src, open(path, "xb") as dst:
        while chunk := src.read(_CHUNK):
            digest.update(chunk)
            dst.write(chunk)
        dst.flush()
        if sync:
            os.fsync(dst.fileno())
    return digest.hexdigest()


def sha256_file(path: Path) -> str:
    """Return the sha256 hex digest of the file at ``path``, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def replace_text_synced(path: Path, text: str) -> None:
    """Atomically replace ``path`` with a file holding ``text`` (write aside, fsync, rename)."""
    temporary = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex}")
    write_bytes_synced(temporary, text.encode("utf-8"))
    os.replace(temporary, path)
    fsync_dir(path.parent)


def fsync_dir(path: Path) -> None:
    """Flush a folder's entries (new, renamed, removed names) to disk where the OS supports it.

    Windows cannot open a folder for fsync and some filesystems refuse it; there the rename is
    still atomic, only its durability across a power cut is left to the filesystem.
    """
    if os.name != "posix":
        return
    try:
        descriptor = os.open(path, os.O_RDONLY)
    except OSError as exc:
        logger.debug("Cannot open folder %s for fsync: %s", path, exc)
        return
    try:
        os.fsync(descriptor)
    except OSError as exc:
        logger.debug("Folder fsync not supported for %s: %s", path, exc)
    finally:
        os.close(descriptor)
