"""Model registry stage: versioned, checksummed artifacts with an atomic ``latest`` pointer.

See :mod:`ModelRegistry.registry` for the folder layout and the crash-safety and concurrency
guarantees, :mod:`ModelRegistry.manifest` for how every file of a version is verified, and
:mod:`ModelRegistry.errors` for the exception tree.
"""

from .aliases import Aliases
from .config import RegistryConfig
from .errors import (
    AliasError,
    ArtifactNotFoundError,
    ChecksumError,
    InvalidArtifactError,
    InvalidTagError,
    MetadataError,
    RegistryError,
    RegistryLockError,
    RegistryStorageError,
    VersionExistsError,
    VersionNotFoundError,
)
from .jsontext import json_text
from .naming import validate_version_tag
from .registry import DEFAULT_LOCK_TIMEOUT_S, ModelRegistry, RemovedVersion
from .versions import LoadedVersion, PublishedVersion, VersionSummary

__all__ = [
    "DEFAULT_LOCK_TIMEOUT_S",
    "AliasError",
    "Aliases",
    "ArtifactNotFoundError",
    "ChecksumError",
    "InvalidArtifactError",
    "InvalidTagError",
    "LoadedVersion",
    "MetadataError",
    "ModelRegistry",
    "PublishedVersion",
    "RegistryConfig",
    "RegistryError",
    "RegistryLockError",
    "RegistryStorageError",
    "RemovedVersion",
    "VersionExistsError",
    "VersionNotFoundError",
    "VersionSummary",
    "json_text",
    "validate_version_tag",
]
