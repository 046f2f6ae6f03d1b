"""``events list`` and ``events label``: the stored events with their verdicts, and labelling.

Events are read from ``events.table`` for the configured source table (``data.table``);
verdicts from its feedback table (see :mod:`Labels.feedback`), matched by overlap so that they
survive re-scoring and version changes.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa

from Database import database_errors
from Labels import FeedbackStore, ImportedLabels, LabelsError, import_label_csv, match_verdicts
from Scoring import EventStore

from .config import ConfigError, LoadedConfig
from .context import DatabaseSession, open_database
from .report import _table

__all__ = ["LISTED_COLUMNS", "format_events", "import_labels", "label_events", "list_events"]

logger = logging.getLogger(__name__)

LISTED_COLUMNS = (
    "id",
    "asset",
    "axis",
    "severity",
    "start_ts",
    "end_ts",
    "duration_s",
    "peak_ts",
    "peak_residual",
    "threshold",
    "ratio",
    "side",
    "model_version",
    "verdict",
    "note",
)
"""The columns of ``events list`` (newest first)."""


def _events_table(session: DatabaseSession, loaded: LoadedConfig) -> sa.Table:
    config = loaded.config
    store = EventStore(session.engine, session.target, config.events.table, config.data.table)
    return store.events


def _read(session: DatabaseSession, table: sa.Table, stmt: sa.Select) -> pd.DataFrame:
    columns = [c.name for c in table.columns]
    action = f"reading {table.fullname}"
    with database_errors(session.target, action), session.engine.connect() as conn:
        if not sa.inspect(conn).has_table(table.name, schema=table.schema):
            return pd.DataFrame(columns=columns)
        rows = conn.execute(stmt).fetchall()
    frame = pd.DataFrame(rows, columns=columns)
    for column in ("start_ts", "end_ts", "peak_ts"):
        frame[column] = pd.to_datetime(frame[column], utc=True)
    return frame


def _with_verdicts(
    session: DatabaseSession, loaded: LoadedConfig, events: pd.DataFrame
) -> pd.DataFrame:
    store = FeedbackStore(session.engine, session.target, loaded.config.events.table)
    feedback = store.read(loaded.config.data.table)
    return events.join(match_verdicts(events, feedback))


def list_events(
    loaded: LoadedConfig,
    *,
    asset: str | None = None,
    since: dt.datetime | None = None,
    severity: str | None = None,
    unlabelled: bool = False,
    limit: int | None = 100,
) -> pd.DataFrame:
    """Kept (not suppressed) events of ``data.table``, newest first, with their verdicts.

    Args:
        loaded: the validated config (``data.table``, ``events.table``).
        asset: only this asset's events (a fleet's id as text).
        since: only events ending at or after this time.
        severity: only ``alert`` or ``error`` events.
        unlabelled: only events without a verdict.
        limit: at most this many (None: all).

    Returns:
        The columns of :data:`LISTED_COLUMNS`; empty when no events were stored yet.

    Raises:
        DatabaseError: the database failed.
    """
    session = open_database(loaded)
    try:
        table = _events_table(session, loaded)
        stmt = sa.select(table).where(
            table.c.source_table == loaded.config.data.table, sa.not_(table.c.suppressed)
        )
        if asset is not None:
            stmt = stmt.where(table.c.asset == asset)
        if since is not None:
            stmt = stmt.where(table.c.end_ts >= since)
        if severity is not None:
            stmt = stmt.where(table.c.severity == severity)
        # Newest first; at one start the error before the alert ("error" > "alert").
        stmt = stmt.order_by(
            table.c.start_ts.desc(), table.c.severity.desc(), table.c.axis, table.c.id.desc()
        )
        if limit is not None and not unlabelled:
            stmt = stmt.limit(limit)
        events = _with_verdicts(session, loaded, _read(session, table, stmt))
    finally:
        session.close()
    if unlabelled:
        events = events[events["verdict"].isna()]
    if limit is not None:
        events = events.head(limit)
    return events[list(LISTED_COLUMNS)].reset_index(drop=True)


def label_events(
    loaded: LoadedConfig, ids: Sequence[int], verdict: str, note: str | None = None
) -> pd.DataFrame:
    """Give the events ``ids`` of ``data.table`` the verdict ``verdict``; all or none.

    Returns:
        The labelled events with their new verdicts (columns of :data:`LISTED_COLUMNS`).

    Raises:
        LabelsError: an id names no event of ``data.table`` (nothing is written), or the
            verdict is unknown.
        DatabaseError: the database failed.
    """
    wanted = sorted(set(int(i) for i in ids))
    session = open_database(loaded)
    try:
        table = _events_table(session, loaded)
        stmt = sa.select(table).where(
            table.c.source_table == loaded.config.data.table, table.c.id.in_(wanted)
        )
        events = _read(session, table, stmt)
        missing = sorted(set(wanted) - set(int(i) for i in events["id"]))
        if missing:
            raise LabelsError(
                f"no event with id {', '.join(map(str, missing))} in {table.fullname} for "
                f"{loaded.config.data.table}; list them with: python orchestrate.py events list"
            )
        FeedbackStore(session.engine, session.target, loaded.config.events.table).label(
            events, verdict, note
        )
        events = _with_verdicts(session, loaded, events)
    finally:
        session.close()
    return events[list(LISTED_COLUMNS)].sort_values("id").reset_index(drop=True)


def import_labels(loaded: LoadedConfig, csv: Path) -> ImportedLabels:
    """Add the failure windows of ``csv`` to ``labels.table`` (see :mod:`Labels.importer`).

    Raises:
        ConfigError: ``labels.table`` is not set.
        LabelsError: the CSV is unusable (nothing is written).
        DatabaseError: the database failed.
    """
    table = loaded.config.labels.table
    if table is None:
        raise ConfigError(
            loaded.source,
            [
                "labels.table: not set; name the table the failure windows go into, e.g. "
                "--set labels.table=failure_windows"
            ],
        )
    session = open_database(loaded)
    try:
        return import_label_csv(
            session.engine, session.target, csv, table, asset_col=loaded.config.data.asset_col
        )
    finally:
        session.close()


def format_events(events: pd.DataFrame) -> str:
    """``events list`` as an aligned table (times to the second)."""
    headers = [
        "id",
        "asset",
        "axis",
        "severity",
        "start",
        "end",
        "peak",
        "ratio",
        "version",
        "verdict",
    ]
    rows = [
        [
            int(row.id),
            row.asset or "-",
            row.axis,
            row.severity,
            _short(row.start_ts),
            _short(row.end_ts),
            None if pd.isna(row.peak_residual) else float(row.peak_residual),
            None if pd.isna(row.ratio) else float(row.ratio),
            row.model_version,
            row.verdict,
        ]
        for row in events.itertuples(index=False)
    ]
    return _table(headers, rows)


def _short(value: Any) -> str:
    return (
        "-"
        if value is None or pd.isna(value)
        else pd.Timestamp(value).strftime("%Y-%m-%d %H:%M:%S")
    )
