"""Durable file primitives: write or copy while hashing, fsync files and folders.

A rename is only crash-safe if the data it publishes reached the disk first, so every file the
registry writes is flushed and fsynced, and so is every folder whose entries changed.
"""

from __future__ import annotations

import hashlib
import logging
import os
import uuid
from pathlib import Path

logger = logging.getLogger(__name__)

__all__ = ["copy_synced", "fsync_dir", "replace_text_synced", "sha256_file", "write_bytes_synced"]

_CHUNK = 1 << 20


def write_bytes_synced(path: Path, data: bytes | bytearray) -> str:
    """Create ``path`` (it must not exist), write ``data``, fsync it and return its sha256 hex."""
    with open(path, "xb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    return hashlib.sha256(data).hexdigest()


def copy_synced(source: Path, path: Path) -> str:
    """Copy ``source`` to a new file ``path`` in chunks, fsync it and return its sha256 hex."""
    digest = hashlib.sha256()
    with open(source, "rb") as src, open(path, "xb") as dst:
        while chunk := src.read(_CHUNK):
            digest.update(chunk)
            dst.write(chunk)
        dst.flush()
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
