"""What the registry hands back, and how a published version is read and verified."""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import yaml

from ._fs import sha256_file
from .errors import ArtifactNotFoundError, ChecksumError, InvalidArtifactError, MetadataError
from .naming import META_FILE, validate_artifact_name, version_number

__all__ = ["LoadedVersion", "PublishedVersion", "VersionSummary"]

TRAIN_HINT = "train and publish one with `python main.py`"
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


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
    verified:
        Whether every checksum was verified at load time; if so, :meth:`read_bytes` and
        :meth:`read_json` also check the bytes they return.
    """

    version: str
    path: Path
    meta: dict[str, Any]
    verified: bool

    @property
    def artifacts(self) -> dict[str, str]:
        """Artifact name → sha256 hex, as recorded in ``meta.yaml``."""
        return artifact_table(self.meta, self.path)

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
            sha256 differs from ``meta.yaml``.
        """
        path = self.path_of(name)
        try:
            data = path.read_bytes()
        except FileNotFoundError as exc:
            if not self.verified:
                raise
            raise checksum_error(self.version, self.path, modified=[], missing=[name]) from exc
        if self.verified and hashlib.sha256(data).hexdigest() != self.artifacts[name]:
            raise checksum_error(self.version, self.path, modified=[name], missing=[])
        return data

    def read_json(self, name: str) -> Any:
        """Return artifact ``name`` parsed as UTF-8 JSON; raises as :meth:`read_bytes`."""
        return json.loads(self.read_bytes(name).decode("utf-8"))


def read_meta(path: Path) -> dict[str, Any]:
    meta_path = path / META_FILE
    fix = "restore it from a backup, or publish a new version with `python main.py`"
    try:
        document = yaml.safe_load(meta_path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise MetadataError(f"{meta_path} is missing; {fix}.") from exc
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise MetadataError(f"{meta_path} cannot be read as YAML ({exc}); {fix}.") from exc
    if not isinstance(document, dict):
        raise MetadataError(
            f"{meta_path} holds a {type(document).__name__}, not a mapping of metadata; {fix}."
        )
    return document


def artifact_table(meta: Mapping[str, Any], path: Path) -> dict[str, str]:
    table = meta.get("artifacts")
    fix = "restore meta.yaml from a backup, or publish a new version with `python main.py`"
    if not isinstance(table, dict) or not all(isinstance(v, str) for v in table.values()):
        raise MetadataError(
            f"{path / META_FILE} has no valid `artifacts` table (name: sha256), so the version "
            f"cannot be verified; {fix}."
        )
    for name in table:
        try:
            validate_artifact_name(name)
        except InvalidArtifactError as exc:
            raise MetadataError(
                f"{path / META_FILE} lists an unsafe artifact: {exc} {fix}."
            ) from exc
    return table


def verify_artifacts(path: Path, meta: Mapping[str, Any]) -> None:
    """Recompute the sha256 of every artifact listed in ``meta`` and compare.

    Raises
    ------
    MetadataError
        If the ``artifacts`` table is missing or malformed.
    ChecksumError
        Naming every artifact that is modified or missing.
    """
    modified, missing = [], []
    for name, expected in artifact_table(meta, path).items():
        file = path / name
        if not file.is_file():
            missing.append(name)
        elif sha256_file(file) != expected:
            modified.append(name)
    if modified or missing:
        raise checksum_error(path.name, path, modified=modified, missing=missing)


def checksum_error(
    version: str, path: Path, *, modified: list[str], missing: list[str]
) -> ChecksumError:
    problems = []
    if modified:
        problems.append(f"modified: {', '.join(modified)}")
    if missing:
        problems.append(f"missing: {', '.join(missing)}")
    return ChecksumError(
        f"model version {version} at {path} failed checksum verification ({'; '.join(problems)}) "
        f"against the sha256 recorded in meta.yaml. Do not use it: restore the files from a "
        f"backup, or load another version, or {TRAIN_HINT}."
    )


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
