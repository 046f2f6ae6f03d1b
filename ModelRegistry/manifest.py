"""The manifest of a version: the sha256 of every file in it, and the manifest's own hash.

Both files use the line format of GNU coreutils ``sha256sum`` (``<64 hex digits>  <name>``), so
a version can also be checked by hand, in its folder::

    sha256sum -c manifest.sha256 && sha256sum -c manifest

``manifest`` lists every file of the version, ``meta.yaml`` included, sorted by name;
``manifest.sha256`` holds the hash of ``manifest``, so an edited manifest is caught too. Like any
checksum kept beside the data, this catches accidental changes and hand edits (a changed
``data.end``, a replaced model), not a forger who recomputes every hash.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from .errors import ChecksumError, InvalidArtifactError
from .naming import MANIFEST_FILE, MANIFEST_HASH_FILE, META_FILE, validate_artifact_name

__all__ = ["checksum_error", "read_manifest", "render_manifest", "render_manifest_hash"]

RETRAIN_HINT = "re-train with `python main.py`"
_LINE = re.compile(r"([0-9a-f]{64})  (.+)")


def render_manifest(checksums: Mapping[str, str]) -> bytes:
    """The ``manifest`` file for ``checksums`` (file name → sha256 hex), sorted by name."""
    return "".join(f"{digest}  {name}\n" for name, digest in sorted(checksums.items())).encode()


def render_manifest_hash(manifest: bytes) -> bytes:
    """The ``manifest.sha256`` file: the hash of the ``manifest`` bytes, in the same format."""
    return f"{hashlib.sha256(manifest).hexdigest()}  {MANIFEST_FILE}\n".encode()


def read_manifest(path: Path, *, verify: bool) -> dict[str, str]:
    """Read the manifest of the version folder ``path``: file name → sha256 hex.

    Parameters
    ----------
    path:
        The version folder.
    verify:
        Check the manifest against ``manifest.sha256`` first.

    Returns
    -------
    dict[str, str]
        Every file of the version, ``meta.yaml`` included, in manifest order.

    Raises
    ------
    ChecksumError
        The version has no manifest (published before manifests existed), the manifest or its
        hash file is missing or does not match, or a line is not ``<sha256>  <name>`` with a
        safe, unique name; ``meta.yaml`` must be listed.
    """
    manifest_path, hash_path = path / MANIFEST_FILE, path / MANIFEST_HASH_FILE
    if not manifest_path.exists() and not hash_path.exists():
        raise ChecksumError(
            f"model version {path.name} at {path} has no {MANIFEST_FILE} file: it was published "
            f"before versions carried one (or its manifest was deleted), so its files, "
            f"{META_FILE} included, cannot be verified. Do not use it: {RETRAIN_HINT} to publish "
            f"a verifiable version, or use another version."
        )
    if not manifest_path.is_file():
        raise checksum_error(path, missing=[MANIFEST_FILE])
    data = manifest_path.read_bytes()
    if verify:
        _verify_manifest_hash(path, data)
    return _parse(path, data)


def _verify_manifest_hash(path: Path, data: bytes) -> None:
    hash_path = path / MANIFEST_HASH_FILE
    if not hash_path.is_file():
        raise checksum_error(path, missing=[MANIFEST_HASH_FILE])
    recorded = hash_path.read_bytes()
    match = _LINE.fullmatch(recorded.decode("utf-8", "replace").rstrip("\n"))
    if match is None or match.group(2) != MANIFEST_FILE:
        raise checksum_error(path, modified=[MANIFEST_HASH_FILE])
    if match.group(1) != hashlib.sha256(data).hexdigest():
        raise checksum_error(path, modified=[MANIFEST_FILE])


def _parse(path: Path, data: bytes) -> dict[str, str]:
    entries: dict[str, str] = {}
    for number, line in enumerate(data.decode("utf-8", "replace").splitlines(), start=1):
        match = _LINE.fullmatch(line)
        name = match.group(2) if match else ""
        if match is None or name in entries or not _is_listable(name):
            raise checksum_error(
                path,
                problem=f"{MANIFEST_FILE} line {number} is not '<sha256>  <file name>' with a "
                f"safe file name listed once",
            )
        entries[name] = match.group(1)
    if META_FILE not in entries:
        raise checksum_error(path, problem=f"{MANIFEST_FILE} does not list {META_FILE}")
    return entries


def _is_listable(name: str) -> bool:
    if name == META_FILE:
        return True
    try:
        validate_artifact_name(name)
    except InvalidArtifactError:
        return False
    return True


def checksum_error(
    path: Path,
    *,
    modified: Sequence[str] = (),
    missing: Sequence[str] = (),
    problem: str | None = None,
) -> ChecksumError:
    """A :class:`ChecksumError` for the version folder ``path`` naming what failed and the fix.

    ``modified`` and ``missing`` are file names; ``problem`` is any other finding.
    """
    problems = [problem] if problem else []
    if modified:
        problems.append(f"modified: {', '.join(modified)}")
    if missing:
        problems.append(f"missing: {', '.join(missing)}")
    return ChecksumError(
        f"model version {path.name} at {path} failed verification against its manifest "
        f"({'; '.join(problems)}). Do not use it: restore the version folder from a backup, use "
        f"another version, or {RETRAIN_HINT}."
    )
