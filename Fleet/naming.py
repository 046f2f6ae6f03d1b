"""Asset ids as folder names: a stable, reversible encoding that can never leave its folder.

Ids come from the database and may hold any text (``robot/7``, ``..``, ``Ä-12``). A folder
name keeps ASCII letters, digits, ``_`` and ``-`` (and ``.`` past the first character); every
other byte of the UTF-8 id, ``%`` included, becomes ``%XX`` (upper-case hex). So ``/``, ``\\``
and a leading ``.`` (``..``, the registry's ``.lock`` and ``.staging``) are always encoded, the
name is never empty, and decoding gives the id back exactly.
"""

from __future__ import annotations

import re

__all__ = ["MAX_FOLDER_CHARS", "AssetNameError", "asset_folder", "asset_from_folder"]

MAX_FOLDER_CHARS = 200
"""Longest encoded name (file systems allow 255 bytes)."""

_KEPT = re.compile(r"[A-Za-z0-9_-]")
_ENCODED = re.compile(r"(?:[A-Za-z0-9._-]|%[0-9A-F]{2})+")  # leading '.': see asset_from_folder


class AssetNameError(ValueError):
    """An asset id that cannot become a folder name (empty, or too long once encoded)."""


def asset_folder(asset: object) -> str:
    """The folder name of ``asset`` (its id as text, encoded as the module says).

    Raises:
        AssetNameError: the id is empty, or longer than :data:`MAX_FOLDER_CHARS` encoded.
    """
    text = str(asset)
    if not text:
        raise AssetNameError(
            "an asset id is empty; give every row of data.asset_col a non-empty id"
        )
    parts = []
    for position, char in enumerate(text):
        if _KEPT.fullmatch(char) or (char == "." and position > 0):
            parts.append(char)
        else:
            parts.extend(f"%{byte:02X}" for byte in char.encode("utf-8"))
    name = "".join(parts)
    if len(name) > MAX_FOLDER_CHARS:
        raise AssetNameError(
            f"asset id {text[:40]!r}... is {len(name)} characters long as a folder name, more "
            f"than the {MAX_FOLDER_CHARS} allowed; use shorter ids in data.asset_col"
        )
    return name


def asset_from_folder(name: str) -> str | None:
    """The asset id a folder name encodes, or None when ``name`` is not such a name."""
    if not _ENCODED.fullmatch(name):
        return None
    raw = bytearray()
    index = 0
    while index < len(name):
        if name[index] == "%":
            raw.append(int(name[index + 1 : index + 3], 16))
            index += 3
        else:
            raw.extend(name[index].encode("ascii"))
            index += 1
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return text if asset_folder(text) == name else None
