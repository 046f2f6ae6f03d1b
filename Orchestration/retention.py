"""``registry gc``: remove old versions, never one that is live, pinned or still has events.

A version is kept when it is among the newest ``--keep``, is ``latest``, ``champion``,
``previous`` or pinned, or produced events that ``events.table`` still holds for this source
table and asset (with ``--older-than D``: events that end within the last D; without it: any
stored event); and, with ``--older-than D``, when it was created less than D ago. The
registry removes them under its lock (see :meth:`ModelRegistry.collect_garbage`), so a
training run publishing at the same time is never affected.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

import sqlalchemy as sa

from Database import database_errors
from Fleet import asset_from_folder
from ModelRegistry import ModelRegistry, RemovedVersion
from Scoring import EventStore

from .config import LoadedConfig
from .context import open_database
from .lifecycle import lineage

__all__ = ["collect_garbage"]

logger = logging.getLogger(__name__)


def versions_with_events(
    loaded: LoadedConfig, assets: list[str | None], since: dt.datetime | None
) -> dict[str | None, set[str]]:
    """Per asset (None: a single machine), the versions of stored events ending after
    ``since`` (None: any stored event) in ``events.table`` for ``data.table``."""
    session = open_database(loaded, access="read")
    found: dict[str | None, set[str]] = {}
    try:
        data, table = loaded.config.data, loaded.config.events.table
        for asset in assets:
            store = EventStore(session.engine, session.target, table, data.table, asset or "")
            events = store.events
            query = sa.select(events.c.model_version).distinct()
            query = query.where(events.c.source_table == data.table, events.c.asset == store.asset)
            if since is not None:
                query = query.where(events.c.end_ts >= since)
            reading = database_errors(session.target, "reading the versions of stored events")
            with reading, session.engine.connect() as conn:
                if not sa.inspect(conn).has_table(events.name, schema=events.schema):
                    found[asset] = set()
                    continue
                found[asset] = {row[0] for row in conn.execute(query)}
    finally:
        session.close()
    return found


def _lineages(loaded: LoadedConfig, asset: str | None) -> dict[str | None, ModelRegistry]:
    """The single registry, one asset's, or (a fleet without ``--asset``) every asset's."""
    if asset is not None or loaded.config.data.asset_col is None:
        return {asset: lineage(loaded, asset, "gc")}
    root = loaded.path(loaded.config.registry.root_dir)
    folders = sorted(root.iterdir()) if root.is_dir() else []
    assets = [asset_from_folder(entry.name) for entry in folders if entry.is_dir()]
    return {name: lineage(loaded, name, "gc") for name in assets if name is not None}


def _size(count: int) -> str:
    return f"{count / 1e6:.1f} MB" if count >= 1e5 else f"{count / 1e3:.1f} kB"


def _line(asset: str | None, version: RemovedVersion, verb: str) -> str:
    created = (
        "" if version.created_at is None else f"created {version.created_at:%Y-%m-%d %H:%M} UTC, "
    )
    of = "" if asset is None else f"{asset}: "
    return f"{of}{verb} {version.version} ({created}{_size(version.bytes)})"


def collect_garbage(
    loaded: LoadedConfig,
    *,
    keep: int,
    older_than: dt.timedelta | None = None,
    dry_run: bool = False,
    asset: str | None = None,
) -> tuple[dict[str, Any], str]:
    """Run ``registry gc`` on one lineage or every asset's; the ``--json`` payload and text.

    Raises:
        DatabaseError: the events table cannot be read (nothing is removed then).
        AliasError: a lineage has a broken alias (that lineage is left alone).
    """
    registries = _lineages(loaded, asset)
    since = None if older_than is None else dt.datetime.now(dt.timezone.utc) - older_than
    in_use = versions_with_events(loaded, list(registries), since)
    removed: dict[str | None, list[RemovedVersion]] = {}
    for name, registry in registries.items():
        removed[name] = registry.collect_garbage(
            keep=keep, older_than=older_than, in_use=in_use[name], dry_run=dry_run
        )
    total = sum(v.bytes for versions in removed.values() for v in versions)
    count = sum(len(versions) for versions in removed.values())
    verb = "would remove" if dry_run else "removed"
    lines = [_line(name, v, verb) for name, versions in removed.items() for v in versions]
    lines.append(f"{verb} {count} version(s), {_size(total)}" if count else "nothing to remove")
    payload = {
        "dry_run": dry_run,
        "removed": {
            name or "": [{"version": v.version, "bytes": v.bytes} for v in versions]
            for name, versions in removed.items()
        },
        "versions": count,
        "bytes": total,
    }
    logger.info("registry gc: %s", lines[-1])
    return payload, "\n".join(lines)
