"""``meta.yaml``: the caller's metadata checked (plain data, YAML-safe, no secrets) and dumped.

A fleet publishes one version per asset, and most of each ``meta.yaml`` is the same for every
asset of a run (the effective config, the libraries, the code revision): the YAML text of a
top-level key is remembered and reused while the key's value stays the same. That reuse is
exact because a block-style mapping is dumped entry after entry, each starting at column 0,
so the document's text is the concatenation of one-key documents — as long as the dump
needs no anchors (an object the representer would write once and then refer to). Plain data
(dicts, lists, str, int, float, bool, None) never gets one, and every dict and list here is
a fresh copy, so only a ``date``/``datetime`` leaf appearing twice could; metadata holding
anything else than plain data and distinct dates is dumped as one document, as before.

The keys that do change from asset to asset (``insights``, ``ranges``, ``health``...) are
mostly mappings of numbers, which PyYAML's representer and resolver (Python, around libyaml's
emitter) take ~5 µs a number to write. :func:`_text_of` writes such a key's text itself —
block mappings and sequences of ``None``, bools, ints, floats and short strings without
spaces, in PyYAML's own spelling of each — and hands any entry it does not write (a string
with spaces, which PyYAML may fold; a list of mappings; an empty string...) to PyYAML at the
same depth, so the text is PyYAML's in every case (the tests compare the two on generated
documents).
"""

from __future__ import annotations

import datetime as dt
import math
import pickle
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from .errors import MetadataError

__all__ = ["RESERVED_META_KEYS", "check_meta", "dump_meta"]

RESERVED_META_KEYS = ("version", "run_id", "created_at")

_SAFE_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
"""libyaml's emitter when PyYAML has it (same output, ~4x faster: a fleet writes thousands)."""
# scheme://user:password@ with a password that is not masked as '***'
_URL_CREDENTIALS = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^/\s:@]*:(?!\*+@)[^/\s@]+@")
_SCALARS = frozenset({type(None), str, int, float, bool})
"""What the YAML representer never anchors (it writes each occurrence in full)."""
_DATES = frozenset({dt.date, dt.datetime})
_REMEMBERED_KEYS = 64
_texts: dict[Any, tuple[bytes, str]] = {}
"""Top-level key → (pickle of the key and its value, their YAML text), for values that were
dumped and found free of secrets; cleared when it outgrows :data:`_REMEMBERED_KEYS`."""


def dump_meta(document: Mapping[str, Any]) -> str:
    """``meta.yaml``'s text of ``document`` (block style, key order kept)."""
    return yaml.dump(
        document,
        Dumper=_SAFE_DUMPER,
        sort_keys=False,
        allow_unicode=True,
        default_flow_style=False,
    )


def check_meta(meta: object) -> tuple[dict[str, Any], str]:
    """The caller's meta as plain dicts and lists, and its ``meta.yaml`` text (empty for no
    keys), or the MetadataError saying what cannot be stored."""

    if not isinstance(meta, Mapping):
        raise MetadataError(
            f"meta must be a mapping (dict) of metadata, got {type(meta).__name__}; pass e.g. "
            f"{{'config': {{...}}, 'data': {{'rows': 100}}}}."
        )
    reserved = [key for key in RESERVED_META_KEYS if key in meta]
    if reserved:
        raise MetadataError(
            f"meta keys {reserved} are reserved: the registry writes version, run_id, created_at "
            f"and artifacts itself; remove them from meta (pass run_id as its own argument)."
        )
    plain: dict[Any, Any] = {}
    others: dict[Any, list[Any]] = {}  # per top-level key: its keys and leaves not _SCALARS
    for key, value in meta.items():
        others[key] = [] if type(key) in _SCALARS else [key]
        plain[key] = _plain(value, others[key])
    try:
        entries = _entries(plain, others)
    except yaml.YAMLError as exc:
        where, value = _find_unrepresentable(plain, "meta") or ("meta", meta)
        raise MetadataError(
            f"{where} has type {type(value).__name__} ({value!r:.60}), which meta.yaml cannot "
            f"store; convert it to str, int, float, bool, None, a list or a dict first (e.g. "
            f"float(x), x.isoformat(), str(x))."
        ) from exc
    # A remembered text's value was found free of secrets when it was remembered.
    secret = next(
        (
            found
            for entry in entries
            if not entry.remembered and (found := _find_secret(entry.document, "meta"))
        ),
        None,
    )
    if secret is not None:
        # The value itself is deliberately not repeated in the message.
        raise MetadataError(
            f"{secret} looks like a password or a URL with credentials; meta.yaml must never "
            f"hold secrets. Record the database dialect and table instead of the URL, mask the "
            f"password as '***', and drop password keys from the config you pass."
        )
    if len(_texts) >= _REMEMBERED_KEYS:
        _texts.clear()
    for entry in entries:
        if entry.fingerprint is not None:
            (key,) = entry.document
            _texts[key] = (entry.fingerprint, entry.text)
    return plain, "".join(entry.text for entry in entries)


@dataclass(frozen=True)
class _Entry:
    """The YAML text of ``document`` (one top-level key of the metadata, or all of them)."""

    document: dict[Any, Any]
    text: str
    fingerprint: bytes | None = None
    """The pickle of the one key and its value, when the text may be remembered."""
    remembered: bool = False


def _entries(plain: dict[Any, Any], others: dict[Any, list[Any]]) -> list[_Entry]:
    """The texts of ``plain``, key by key unless that could differ from dumping it whole (see
    the module docstring); ``others`` holds each key's keys and leaves that are not scalars."""
    if not plain:
        return []
    leaves = [leaf for found in others.values() for leaf in found]
    if any(type(leaf) not in _DATES for leaf in leaves) or len({*map(id, leaves)}) < len(leaves):
        return [_Entry(plain, dump_meta(plain))]
    entries = []
    for key, value in plain.items():
        document = {key: value}
        if others[key]:  # dates are dumped, not remembered: a tzinfo may not pickle exactly
            entries.append(_Entry(document, dump_meta(document)))
            continue
        fingerprint = pickle.dumps(document, protocol=pickle.HIGHEST_PROTOCOL)
        known = _texts.get(key)
        if known is not None and known[0] == fingerprint:
            entries.append(_Entry(document, known[1], remembered=True))
        else:
            entries.append(_Entry(document, _text_of(document), fingerprint))
    return entries


def _text_of(document: dict[Any, Any]) -> str:
    """:func:`dump_meta` of ``document`` (plain data: dicts, lists and _SCALARS), written by
    :func:`_block_entry` where it can."""
    out: list[str] = []
    for key, value in document.items():
        _block_entry(out, key, value, 0)
    return "".join(out)


_SHORT = 60
"""Longest string :func:`_text_of` writes itself (a key longer than 128 characters
changes PyYAML's key style; a string is folded only at a space, and these have none)."""
_checked: dict[tuple[str, str], bool] = {}
"""(position, string) → whether PyYAML writes the string as it is (plain) there."""


def _plain_string(text: str, position: str) -> bool:
    """Whether PyYAML writes ``text`` as it is (no quotes) as a mapping ``key``, a mapping
    ``value`` or a sequence ``item``; asked of PyYAML once per string."""
    found = _checked.get((position, text))
    if found is None:
        if len(text) > _SHORT or not text or any(c.isspace() for c in text):
            found = False
        elif position == "key":
            found = dump_meta({text: 0}) == f"{text}: 0\n"
        elif position == "value":
            found = dump_meta({"k": text}) == f"k: {text}\n"
        else:
            found = dump_meta({"k": [text]}) == f"k:\n- {text}\n"
        if len(_checked) > 4096:
            _checked.clear()
        _checked[(position, text)] = found
    return found


def _scalar_text(value: Any, position: str) -> str | None:
    """PyYAML's plain spelling of a scalar (SafeRepresenter), or None when not written here."""
    kind = type(value)
    if value is None:
        return "null"
    if kind is bool:
        return "true" if value else "false"
    if kind is int:
        return str(value)
    if kind is float:
        if value != value:
            return ".nan"
        if value in (math.inf, -math.inf):
            return ".inf" if value > 0 else "-.inf"
        text = repr(value).lower()
        if "." not in text and "e" in text:
            text = text.replace("e", ".0e", 1)
        return text
    if kind is str and _plain_string(value, position):
        return value
    return None


def _block_entry(out: list[str], key: Any, value: Any, depth: int) -> None:
    """Append the text of the mapping entry ``key: value`` at nesting ``depth`` (two spaces
    each), as PyYAML's block style writes it."""
    pad = "  " * depth
    name = key if type(key) is str and _plain_string(key, "key") else None
    if name is not None:
        if type(value) is dict:
            if value:
                out.append(f"{pad}{name}:\n")
                for inner, item in value.items():
                    _block_entry(out, inner, item, depth + 1)
                return
            out.append(f"{pad}{name}: {{}}\n")
            return
        if type(value) is list:
            if not value:
                out.append(f"{pad}{name}: []\n")
                return
            items = [_scalar_text(item, "item") for item in value]
            if None not in items:
                out.append(f"{pad}{name}:\n")
                out.extend(f"{pad}- {item}\n" for item in items)
                return
        else:
            text = _scalar_text(value, "value")
            if text is not None:
                out.append(f"{pad}{name}: {text}\n")
                return
    # PyYAML writes it, at the same depth: nested under ``depth`` one-key mappings, whose
    # lines are then dropped (a block mapping's entry is written the same at a given depth).
    wrapped: Any = {key: value}
    for _ in range(depth):
        wrapped = {"_": wrapped}
    text = dump_meta(wrapped)
    head = "".join(f"{'  ' * level}_:\n" for level in range(depth))
    if not text.startswith(head):  # not expected: PyYAML wrote the wrapper otherwise
        raise yaml.YAMLError(f"unexpected YAML for a nested entry: {text[:80]!r}")
    out.append(text[len(head) :])


def _plain(value: Any, others: list[Any]) -> Any:
    """``value`` with every mapping a new dict and every list or tuple a new list; the keys
    and leaves that are not plain scalars are appended to ``others``."""
    if type(value) is dict or isinstance(value, Mapping):
        plain = {}
        for key, item in value.items():
            if type(key) not in _SCALARS:
                others.append(key)
            plain[key] = _plain(item, others)
        return plain
    if type(value) in (list, tuple) or isinstance(value, (list, tuple)):
        return [_plain(item, others) for item in value]
    if type(value) not in _SCALARS:
        others.append(value)
    return value


def _find_unrepresentable(value: Any, where: str) -> tuple[str, Any] | None:
    """Return (location, value) of the first key or value YAML safe_dump cannot write."""
    if isinstance(value, dict):
        for key, item in value.items():
            if type(key) not in yaml.SafeDumper.yaml_representers:
                return f"key {key!r} of {where}", key
            if found := _find_unrepresentable(item, f"{where}.{key}"):
                return found
        return None
    if isinstance(value, list):
        for index, item in enumerate(value):
            if found := _find_unrepresentable(item, f"{where}[{index}]"):
                return found
        return None
    return None if type(value) in yaml.SafeDumper.yaml_representers else (where, value)


def _find_secret(value: Any, where: str) -> str | None:
    """Return the location of the first password key or credential-bearing URL, if any."""
    if isinstance(value, dict):
        for key, item in value.items():
            masked = item is None or (isinstance(item, str) and not item.strip("*"))
            if isinstance(key, str) and "password" in key.lower() and not masked:
                return f"{where}.{key}"
            if found := _find_secret(item, f"{where}.{key}"):
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            if found := _find_secret(item, f"{where}[{index}]"):
                return found
    elif isinstance(value, str) and _URL_CREDENTIALS.search(value):
        return where
    return None
