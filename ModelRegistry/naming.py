"""Names inside the registry: version tags, artifact paths and their ordering.

Tags and artifact names become folder and file names, so they are validated here, once, before
anything touches the disk: no tag or artifact name can point outside its folder.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath, PureWindowsPath

from .errors import InvalidArtifactError, InvalidTagError

__all__ = [
    "ALIASES_DIR",
    "AUTO_TAG",
    "CHAMPION",
    "LATEST_FILE",
    "LATEST_NAME",
    "MANIFEST_FILE",
    "MANIFEST_HASH_FILE",
    "MAX_TAG_LENGTH",
    "META_FILE",
    "PREVIOUS",
    "RESERVED_FILES",
    "RESERVED_NAMES",
    "validate_artifact_name",
    "validate_version_tag",
    "version_number",
]

AUTO_TAG = "auto"
LATEST_NAME = "latest"
LATEST_FILE = "LATEST"
META_FILE = "meta.yaml"
MANIFEST_FILE = "manifest"
MANIFEST_HASH_FILE = "manifest.sha256"
RESERVED_FILES = (META_FILE, MANIFEST_FILE, MANIFEST_HASH_FILE)
"""Files the registry writes into every version itself; never caller artifacts."""
MAX_TAG_LENGTH = 64
CHAMPION = "champion"
PREVIOUS = "previous"
ALIASES_DIR = "aliases"
RESERVED_NAMES = (LATEST_NAME, CHAMPION, PREVIOUS, ALIASES_DIR)
"""Names that mean a pointer or the aliases' folder, never a version (any letter case)."""

_TAG_CHARS = re.compile(r"[A-Za-z0-9._-]+")
_NUMBERED = re.compile(r"v([0-9]+)")
_ALLOWED = "letters, digits, '.', '_' and '-'"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def validate_version_tag(tag: object, *, allow_auto: bool = True) -> str:
    """Return ``tag`` if it is a safe version tag, else raise :class:`InvalidTagError`.

    A tag is 1-64 ASCII letters, digits, ``.``, ``_`` or ``-``, does not start with ``.``
    (reserved for the registry's own files) and is not ``latest`` in any letter case (reserved
    for the pointer, and ``LATEST`` is the pointer file where symlinks are unavailable), nor
    ``champion``, ``previous`` (aliases) or ``aliases`` (their folder). Such a
    name can never contain a path separator or be ``..``, so it cannot escape the registry.

    Parameters
    ----------
    tag:
        The candidate tag.
    allow_auto:
        Whether ``"auto"`` (take the next ``v<N>``) is accepted. Default ``True``.

    Returns
    -------
    str
        ``tag`` unchanged.

    Raises
    ------
    InvalidTagError
        With a sentence naming the problem and the allowed form.
    """
    fix = (
        f"use 'auto' for the next v<N>, or 1-{MAX_TAG_LENGTH} {_ALLOWED}, "
        f"e.g. 'v12' or 'line3-2024.06'"
    )
    if not isinstance(tag, str):
        raise InvalidTagError(
            f"version tag must be a string, got {type(tag).__name__} {tag!r}; {fix}."
        )
    if tag == AUTO_TAG and allow_auto:
        return tag
    if not tag:
        raise InvalidTagError(f"version tag is empty; {fix}.")
    if len(tag) > MAX_TAG_LENGTH:
        raise InvalidTagError(
            f"version tag {tag[:20]!r}... is {len(tag)} characters long, more than the "
            f"{MAX_TAG_LENGTH} allowed; {fix}."
        )
    if not _TAG_CHARS.fullmatch(tag):
        bad = sorted({ch for ch in tag if not _TAG_CHARS.fullmatch(ch)})
        raise InvalidTagError(
            f"version tag {tag!r} contains {', '.join(repr(ch) for ch in bad)}; only {_ALLOWED} "
            f"are allowed, so a tag can never point outside the registry folder; {fix}."
        )
    if tag.startswith("."):
        raise InvalidTagError(
            f"version tag {tag!r} starts with '.', which is reserved for the registry's internal "
            f"files; {fix}."
        )
    if tag.lower() == LATEST_NAME:
        raise InvalidTagError(
            f"version tag {tag!r} is reserved for the pointer to the newest version; {fix}."
        )
    if tag.lower() in RESERVED_NAMES:
        raise InvalidTagError(
            f"version tag {tag!r} is reserved for the registry's aliases (champion, previous "
            f"and their folder 'aliases'); {fix}."
        )
    if tag == AUTO_TAG:
        raise InvalidTagError(
            "version tag 'auto' is not a version name (it means 'take the next v<N>'); "
            "pass a concrete tag such as 'v3'."
        )
    return tag


def version_number(tag: str) -> int | None:
    """Return ``N`` for a numbered tag ``v<N>`` (``"v10"`` → 10), else ``None``."""
    match = _NUMBERED.fullmatch(tag)
    return int(match.group(1)) if match else None


def validate_artifact_name(name: object) -> str:
    """Return ``name`` if it is a safe relative POSIX path inside a version folder.

    Parameters
    ----------
    name:
        Candidate artifact name such as ``"models.json"`` or ``"plots/axis1_fit.png"``.

    Returns
    -------
    str
        ``name`` unchanged.

    Raises
    ------
    InvalidArtifactError
        If ``name`` is not a string, is empty, absolute, uses ``\\`` or a control character
        (the manifest has one name per line), contains an empty, ``.`` or ``..`` segment, or is
        one of :data:`RESERVED_FILES` (written by the registry itself).
    """
    fix = (
        "use a relative POSIX path inside the version folder, "
        "e.g. 'models.json' or 'plots/axis1_fit.png'"
    )
    if not isinstance(name, str):
        raise InvalidArtifactError(
            f"artifact name must be a string, got {type(name).__name__} {name!r}; {fix}."
        )
    if not name or "\\" in name or _CONTROL.search(name):
        raise InvalidArtifactError(
            f"artifact name {name!r} is empty or contains '\\' or a control character "
            f"(NUL, newline, ...); {fix}."
        )
    if PurePosixPath(name).is_absolute() or PureWindowsPath(name).drive:
        raise InvalidArtifactError(f"artifact name {name!r} is an absolute path; {fix}.")
    if any(part in ("", ".", "..") for part in name.split("/")):
        raise InvalidArtifactError(
            f"artifact name {name!r} has an empty, '.' or '..' segment, which could leave the "
            f"version folder; {fix}."
        )
    if name == META_FILE:
        raise InvalidArtifactError(
            f"artifact name {name!r} is reserved: the registry writes meta.yaml itself from the "
            f"`meta` argument; pass your metadata there."
        )
    if name in RESERVED_FILES:
        raise InvalidArtifactError(
            f"artifact name {name!r} is reserved: the registry writes the manifest of every "
            f"version itself; rename the artifact."
        )
    return name
