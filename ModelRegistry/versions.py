"""What the registry hands back, and how a published version is read and verified."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import yaml

from ._fs import sha256_file
from .errors import ArtifactNotFoundError, MetadataError
from .manifest import checksum_error, read_manifest
from .naming import (
    MANIFEST_FILE,
    MANIFEST_HASH_FILE,
    META_FILE,
    validate_artifact_name,
    version_number,
)

logger = logging.getLogger(__name__)

__all__ = ["LoadedVersion", "PublishedVersion", "VersionSummary"]

TRAIN_HINT = "train and publish one with `python main.py`"
_META_FIX = "restore it from a backup, or publish a new version with `python main.py`"
_MAX_NAMED = 10
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
"""libyaml's parser when PyYAML has it: the same documents, several times faster."""


@dataclass(frozen=True)
class PublishedVersion:
    """What :meth:`ModelRegistry.publish` committed.

    Attributes
    ----------
    version:
        The tag, e.g. ``"v3"``.
    path:
        Absolute folder of the version.
    run_id:
        The run that produced it.
    created_at:
        UTC commit time (timezone-aware), as written to ``meta.yaml``.
    """

    version: str
    path: Path
    run_id: str
    created_at: datetime


@dataclass(frozen=True)
class VersionSummary:
    """One row of :meth:`ModelRegistry.list_versions`, read from the version's ``meta.yaml``.

    Fields the metadata does not carry (``data.rows``, ``data.start``, ``data.end``, ``axes``)
    are ``None`` (``()`` for ``axes``); so are all of them when ``meta.yaml`` is unreadable.
    """

    version: str
    created_at: datetime | None
    run_id: str | None
    rows: int | None
    window_start: str | None
    window_end: str | None
    axes: tuple[str, ...]
    is_latest: bool


@dataclass(frozen=True)
class LoadedVersion:
    """A resolved version: its folder, its metadata and checked access to its artifacts.

    Attributes
    ----------
    version:
        The concrete tag (``"latest"`` is already resolved, e.g. to ``"v3"``).
    path:
        Absolute folder of the version. It is immutable, so later publishes do not affect it.
    meta:
        The parsed ``meta.yaml``.
    manifest:
        Every file of the version (``meta.yaml`` included) → its sha256 hex, from ``manifest``.
    verified:
        Whether the manifest and every file it lists were verified at load time; if so,
        :meth:`read_bytes` and :meth:`read_json` also check the bytes they return.
    """

    version: str
    path: Path
    meta: dict[str, Any]
    manifest: dict[str, str]
    verified: bool

    @property
    def artifacts(self) -> dict[str, str]:
        """Artifact name → sha256 hex: the manifest without the registry's own ``meta.yaml``."""
        return {name: digest for name, digest in self.manifest.items() if name != META_FILE}

    def path_of(self, name: str) -> Path:
        """Return the absolute path of artifact ``name`` (e.g. ``"plots/axis1_fit.png"``).

        Raises
        ------
        InvalidArtifactError
            If ``name`` is not a safe relative path.
        ArtifactNotFoundError
            If ``name`` is not an artifact of this version; the message lists the artifacts.
        """
        validate_artifact_name(name)
        table = self.artifacts
        if name not in table:
            raise ArtifactNotFoundError(
                f"artifact {name!r} is not part of model version {self.version} at {self.path}; "
                f"its artifacts are: {', '.join(table) or '(none)'}. Use one of those names, or "
                f"publish a version that includes {name!r}."
            )
        return self.path / name

    def read_bytes(self, name: str) -> bytes:
        """Return the content of artifact ``name``.

        Raises
        ------
        ArtifactNotFoundError, InvalidArtifactError
            As :meth:`path_of`.
        ChecksumError
            If the version was loaded with ``verify=True`` and the file is now missing or its
            sha256 differs from the manifest.
        """
        path = self.path_of(name)
        try:
            data = path.read_bytes()
        except FileNotFoundError as exc:
            if not self.verified:
                raise
            raise checksum_error(self.path, missing=[name]) from exc
        if self.verified and hashlib.sha256(data).hexdigest() != self.artifacts[name]:
            raise checksum_error(self.path, modified=[name])
        return data

    def read_json(self, name: str) -> Any:
        """Return artifact ``name`` parsed as UTF-8 JSON; raises as :meth:`read_bytes`."""
        return json.loads(self.read_bytes(name).decode("utf-8"))


def open_version(path: Path, *, verify: bool) -> LoadedVersion:
    """Read the version folder ``path``; with ``verify``, check every file before parsing any.

    ``meta.yaml`` is parsed from the very bytes whose hash was checked, so an edit between the
    check and the read cannot slip through. Files the manifest does not list are ignored (they
    are never read through :class:`LoadedVersion`) and named in a warning.

    Raises
    ------
    ChecksumError
        As :func:`~ModelRegistry.manifest.read_manifest`, or naming every listed file that is
        modified or missing.
    MetadataError
        ``meta.yaml`` cannot be parsed (unverified loads, or a version published broken).
    """
    manifest = read_manifest(path, verify=verify)
    if not verify:
        return LoadedVersion(path.name, path, read_meta(path), manifest, verified=False)
    meta_bytes = _verify_files(path, manifest)
    _warn_unlisted(path, manifest)
    meta = _parse_meta(path / META_FILE, meta_bytes)
    return LoadedVersion(path.name, path, meta, manifest, verified=True)


def verify_version(path: Path) -> None:
    """Check the version folder ``path`` as :func:`open_version` does with ``verify`` (the
    manifest, then every file it lists), without parsing ``meta.yaml`` (e.g. before promoting
    it: a fleet promotes a thousand versions per run).

    Raises
    ------
    ChecksumError
        As :func:`open_version`.
    """
    manifest = read_manifest(path, verify=True)
    _verify_files(path, manifest)
    _warn_unlisted(path, manifest)


def _verify_files(path: Path, manifest: Mapping[str, str]) -> bytes:
    """Check every file of ``manifest``; return the verified bytes of ``meta.yaml``."""
    modified, missing = [], []
    meta = b""
    for name, expected in manifest.items():
        file = path / name
        if not file.is_file():
            missing.append(name)
            continue
        if name == META_FILE:
            meta = file.read_bytes()
            actual = hashlib.sha256(meta).hexdigest()
        else:
            actual = sha256_file(file)
        if actual != expected:
            modified.append(name)
    if modified or missing:
        raise checksum_error(path, modified=modified, missing=missing)
    return meta


def _warn_unlisted(path: Path, manifest: Mapping[str, str]) -> None:
    listed = {*manifest, MANIFEST_FILE, MANIFEST_HASH_FILE}
    unlisted = sorted(
        name
        for name in (item.relative_to(path).as_posix() for item in path.rglob("*"))
        if name not in listed and not (path / name).is_dir()
    )
    if unlisted:
        logger.warning(
            "model version %s at %s holds files its manifest does not list; they are ignored: %s",
            path.name,
            path,
            ", ".join(unlisted[:_MAX_NAMED]) + (" ..." if len(unlisted) > _MAX_NAMED else ""),
        )


def read_meta(path: Path) -> dict[str, Any]:
    """Parse ``meta.yaml`` of the version folder ``path`` without verifying it (for listing).

    Raises
    ------
    MetadataError
        Missing, unreadable, not YAML, or not a mapping.
    """
    meta_path = path / META_FILE
    try:
        data = meta_path.read_bytes()
    except FileNotFoundError as exc:
        raise MetadataError(f"{meta_path} is missing; {_META_FIX}.") from exc
    except OSError as exc:
        raise MetadataError(f"{meta_path} cannot be read ({exc}); {_META_FIX}.") from exc
    return _parse_meta(meta_path, data)


def _parse_meta(meta_path: Path, data: bytes) -> dict[str, Any]:
    try:
        document = yaml.load(data.decode("utf-8"), Loader=_SAFE_LOADER)
    except (UnicodeDecodeError, yaml.YAMLError) as exc:
        raise MetadataError(f"{meta_path} cannot be read as YAML ({exc}); {_META_FIX}.") from exc
    if not isinstance(document, dict):
        raise MetadataError(
            f"{meta_path} holds a {type(document).__name__}, not a mapping of metadata; "
            f"{_META_FIX}."
        )
    return document


def summarize(name: str, meta: Mapping[str, Any], *, is_latest: bool) -> VersionSummary:
    data = meta.get("data") if isinstance(meta.get("data"), Mapping) else {}
    axes = meta.get("axes")
    if isinstance(axes, Mapping):
        axes = list(axes)
    run_id = meta.get("run_id")
    return VersionSummary(
        version=name,
        created_at=_as_datetime(meta.get("created_at")),
        run_id=None if run_id is None else str(run_id),
        rows=_as_int(data.get("rows")),
        window_start=_as_text(data.get("start")),
        window_end=_as_text(data.get("end")),
        axes=tuple(str(axis) for axis in axes) if isinstance(axes, list) else (),
        is_latest=is_latest,
    )


def _as_datetime(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            return datetime.fromisoformat(value)
    return None


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _as_text(value: Any) -> str | None:
    if value is None:
        return None
    return value.isoformat() if isinstance(value, datetime) else str(value)


def summary_order(summary: VersionSummary) -> tuple[int, int, datetime, str]:
    number = version_number(summary.version)
    if number is not None:
        return (0, number, _EPOCH, summary.version)
    created = summary.created_at or _EPOCH
    if created.tzinfo is None:
        created = created.replace(tzinfo=timezone.utc)
    return (1, 0, created, summary.version)
