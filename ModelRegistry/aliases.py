"""Aliases of a registry: ``champion`` (what scoring uses), ``previous``, and user pins.

Layout beside the versions (one lineage: a registry root, or one asset's folder of a fleet)::

    aliases/champion            one line: the version scoring uses
    aliases/previous            one line: the champion before it (what ``rollback`` restores)
    aliases/pins/<version>      one small file per pinned version (when it was pinned)
    aliases/decisions/<version>.json   why the version was (not) promoted: the gate's figures

Version folders are immutable and checksummed, so what changes after publishing lives here,
never in a version's ``meta.yaml``. Every file is replaced atomically (written aside, fsynced,
renamed) by the :class:`~ModelRegistry.ModelRegistry` methods, under the registry lock. On
reading, an alias must hold exactly one valid version tag that names a published version;
anything else is an :class:`~ModelRegistry.AliasError` naming the file and the fix.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ._fs import fsync_dir, replace_text_synced
from .errors import AliasError, InvalidTagError
from .naming import ALIASES_DIR, CHAMPION, PREVIOUS, validate_version_tag

__all__ = ["ALIAS_NAMES", "Aliases", "read_aliases"]

ALIAS_NAMES = (CHAMPION, PREVIOUS)
PINS_DIR = "pins"
DECISIONS_DIR = "decisions"
_FIX = (
    "repair it with `python orchestrate.py registry promote VERSION` (or delete the file to "
    "fall back to `latest`)"
)


@dataclass(frozen=True)
class Aliases:
    """The aliases of one lineage. ``champion`` None: none set yet (scoring uses ``latest``)."""

    champion: str | None
    previous: str | None
    pins: tuple[str, ...]

    def protected(self) -> set[str]:
        """Versions that retention never removes: champion, previous and the pinned ones."""
        return {v for v in (self.champion, self.previous, *self.pins) if v is not None}

    def marks(self, version: str) -> list[str]:
        """The aliases naming ``version``, e.g. ``["champion", "pinned"]``."""
        names = [name for name in ALIAS_NAMES if getattr(self, name) == version]
        return names + (["pinned"] if version in self.pins else [])

    def to_dict(self) -> dict[str, Any]:
        """Plain data for ``--json``."""
        return {"champion": self.champion, "previous": self.previous, "pins": list(self.pins)}


def aliases_dir(root: Path) -> Path:
    """The folder of a lineage's aliases."""
    return root / ALIASES_DIR


def read_alias(root: Path, name: str, is_version: Any) -> str | None:
    """The version alias ``name`` names, None when it is not set.

    Raises
    ------
    AliasError
        The file is not one valid tag on one line, or names no published version.
    """
    path = aliases_dir(root) / name
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise AliasError(f"alias {name} ({path}) cannot be read ({exc}); {_FIX}.") from exc
    return _checked_tag(path, name, text, is_version)


def _checked_tag(path: Path, name: str, text: str, is_version: Any) -> str:
    tag = text.removesuffix("\n")
    try:
        validate_version_tag(tag, allow_auto=False)
    except InvalidTagError as exc:
        raise AliasError(
            f"alias {name} ({path}) does not hold one version tag ({str(exc)[:120]}); {_FIX}."
        ) from exc
    if not is_version(tag):
        raise AliasError(
            f"alias {name} ({path}) names version {tag!r}, which is not a published version "
            f"of {path.parent.parent}; {_FIX}."
        )
    return tag


def read_pins(root: Path, is_version: Any) -> tuple[str, ...]:
    """The pinned versions, sorted. A pin of a version that no longer exists is an error."""
    folder = aliases_dir(root) / PINS_DIR
    if not folder.is_dir():
        return ()
    pins = []
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith("."):
            continue  # a write in progress
        pins.append(_checked_tag(entry, f"pin {entry.name}", f"{entry.name}\n", is_version))
    return tuple(pins)


def read_aliases(root: Path, is_version: Any) -> Aliases:
    """All aliases of the lineage at ``root``; ``is_version(tag)`` says whether a tag exists."""
    return Aliases(
        champion=read_alias(root, CHAMPION, is_version),
        previous=read_alias(root, PREVIOUS, is_version),
        pins=read_pins(root, is_version),
    )


def write_alias(root: Path, name: str, version: str | None) -> None:
    """Point alias ``name`` at ``version`` atomically (None: remove it). Caller holds the lock."""
    folder = aliases_dir(root)
    folder.mkdir(exist_ok=True)
    path = folder / name
    if version is None:
        if path.exists():
            path.unlink()
            fsync_dir(folder)
        return
    replace_text_synced(path, f"{version}\n")


def write_pin(root: Path, version: str, pinned: bool) -> None:
    """Pin (a file named for the version) or unpin ``version``. Caller holds the lock."""
    folder = aliases_dir(root) / PINS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / version
    if pinned:
        stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
        replace_text_synced(path, f"pinned at {stamp}\n")
    elif path.exists():
        path.unlink()
        fsync_dir(folder)


def write_decision(root: Path, version: str, decision: dict[str, Any]) -> Path:
    """Record the promotion decision of ``version`` (JSON). Caller holds the lock."""
    folder = aliases_dir(root) / DECISIONS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{version}.json"
    replace_text_synced(path, json.dumps(decision, indent=2, default=str) + "\n")
    return path


def read_decision(root: Path, version: str) -> dict[str, Any] | None:
    """The recorded promotion decision of ``version``, None when there is none."""
    path = aliases_dir(root) / DECISIONS_DIR / f"{version}.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise AliasError(
            f"the promotion record {path} cannot be read ({exc}); delete it (it is only a record)."
        ) from exc


def remove_records(root: Path, version: str) -> None:
    """Drop the pin and decision files of a version being removed. Caller holds the lock."""
    for path in (
        aliases_dir(root) / PINS_DIR / version,
        aliases_dir(root) / DECISIONS_DIR / f"{version}.json",
    ):
        if os.path.lexists(path):
            path.unlink()
