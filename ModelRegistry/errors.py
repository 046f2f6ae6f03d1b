"""Exceptions raised by the model registry, documented in one place.

Every error derives from :class:`RegistryError`, and also from the built-in a caller would
naturally catch (``LookupError`` for "not there", ``ValueError`` for "bad input",
``TimeoutError`` for "busy", ``OSError`` for the disk). Each message says what failed, where
(path or version) and how to fix it.

::

    RegistryError(Exception)
    ├── VersionNotFoundError(LookupError)    unknown version, or an empty / missing registry
    ├── ArtifactNotFoundError(LookupError)   a name that is not an artifact of the version
    ├── VersionExistsError(ValueError)       an explicit tag that is already published
    ├── InvalidTagError(ValueError)          a tag that is not a safe folder name
    ├── InvalidArtifactError(ValueError)     a bad artifact name or source file
    ├── MetadataError(ValueError)            meta that cannot be written, or an unreadable meta.yaml
    ├── ChecksumError(ValueError)            files that fail verification against the manifest
    ├── AliasError(ValueError)               an alias file that is broken or names no version,
    │                                        or an alias operation that cannot be done
    ├── RegistryLockError(TimeoutError)      the registry lock could not be taken in time
    └── RegistryStorageError(OSError)        the registry folder cannot be written or read
"""

from __future__ import annotations

__all__ = [
    "AliasError",
    "ArtifactNotFoundError",
    "ChecksumError",
    "InvalidArtifactError",
    "InvalidTagError",
    "MetadataError",
    "RegistryError",
    "RegistryLockError",
    "RegistryStorageError",
    "VersionExistsError",
    "VersionNotFoundError",
]


class RegistryError(Exception):
    """Base class of every error raised by the model registry."""


class VersionNotFoundError(RegistryError, LookupError):
    """The requested version (or any version at all) is not in the registry."""


class ArtifactNotFoundError(RegistryError, LookupError):
    """The requested file is not one of the version's published artifacts."""


class VersionExistsError(RegistryError, ValueError):
    """An explicit version tag is already published; versions are never overwritten."""


class InvalidTagError(RegistryError, ValueError):
    """A version tag is not 1-64 letters, digits, ``.``, ``_``, ``-`` (or is reserved)."""


class InvalidArtifactError(RegistryError, ValueError):
    """An artifact name escapes the version folder, or its source cannot be read."""


class MetadataError(RegistryError, ValueError):
    """Metadata cannot be written to, or read back from, ``meta.yaml``."""


class ChecksumError(RegistryError, ValueError):
    """A version fails verification: a file is modified or missing, or it has no manifest."""


class AliasError(RegistryError, ValueError):
    """An alias (champion, previous, a pin) is unreadable or names no published version, or an
    alias operation is impossible (rollback without a previous version, unpin of an unpinned
    one)."""


class RegistryLockError(RegistryError, TimeoutError):
    """The inter-process registry lock was not acquired within the timeout."""


class RegistryStorageError(RegistryError, OSError):
    """The registry folder cannot be written or read: full disk, read-only or immutable
    folder, a file where a folder is expected. ``errno`` is the OS's, when there is one; the
    path is in the message."""
