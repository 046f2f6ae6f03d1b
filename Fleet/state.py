"""The fleet state table: one row per (source table, asset), written by every training run.

Columns: ``source_table``, ``asset`` (the key), ``status`` (``trained``, ``needs-data``,
``failed``), ``trained`` (whether the last run published a version), ``version`` and
``trained_at`` (the asset's last good version and when it was published: it keeps scoring with
it), ``samples`` (usable samples in the last run's window), ``missing`` (``needs-data``: how
many more it needs), ``reason``, ``families`` and ``thresholds`` (JSON of the last good
version), ``expected_events_per_day``, ``attention``, ``run_id``, ``updated_at``.

A run writes all its rows in one transaction under the writers' lock of the table (see
``Scoring.locked_transaction``): delete the run's keys, insert the new rows. Re-running with
the same outcomes leaves the same rows (idempotent). An asset that was not trained this time
keeps the version, time, families and thresholds of its last good version.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Sequence
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from Database import DatabaseTarget, database_errors, split_table_name, table_exists
from Scoring import locked_transaction

from .outcome import AssetOutcome

__all__ = ["FleetStateStore"]

logger = logging.getLogger(__name__)

_KEPT_FROM_LAST_GOOD = (
    "version",
    "trained_at",
    "families",
    "thresholds",
    "expected_events_per_day",
)


class FleetStateStore:
    """Reads and writes the fleet state table for one source table.

    Args:
        engine: engine of the data's database.
        target: the database (for password-safe error messages).
        table: the fleet state table (``fleet.table``).
        source_table: the fleet's samples table (``data.table``).
    """

    def __init__(
        self, engine: Engine, target: DatabaseTarget, table: str, source_table: str
    ) -> None:
        schema, name = split_table_name(table)
        self.engine = engine
        self.target = target
        self.name = table
        self.source_table = source_table
        self._metadata = sa.MetaData(schema=schema)
        self.table = sa.Table(
            name,
            self._metadata,
            sa.Column("source_table", sa.String(255), primary_key=True),
            sa.Column("asset", sa.String(128), primary_key=True),
            sa.Column("status", sa.String(16), nullable=False),
            sa.Column("trained", sa.Boolean, nullable=False),
            sa.Column("version", sa.String(64), nullable=True),
            sa.Column("trained_at", sa.DateTime(timezone=True), nullable=True),
            sa.Column("samples", sa.Integer, nullable=True),
            sa.Column("missing", sa.Integer, nullable=True),
            sa.Column("reason", sa.Text, nullable=True),
            sa.Column("families", sa.Text, nullable=True),
            sa.Column("thresholds", sa.Text, nullable=True),
            sa.Column("expected_events_per_day", sa.Float(53), nullable=True),
            sa.Column("attention", sa.Text, nullable=True),
            sa.Column("run_id", sa.String(64), nullable=False),
            sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        )

    def write(self, outcomes: Sequence[AssetOutcome], run_id: str) -> None:
        """Store the outcomes of one training run, all in one transaction.

        Raises:
            DatabaseError: the database failed (nothing is stored).
        """
        if not outcomes:
            return
        now = dt.datetime.now(dt.timezone.utc)
        rows = [self._row(outcome, run_id, now) for outcome in outcomes]
        keys = [row["asset"] for row in rows]
        with (
            database_errors(self.target, f"writing the fleet state to {self.name!r}"),
            self.engine.connect() as conn,
            locked_transaction(conn, self.table.schema, self.table.name, "") as locked,
        ):
            self._metadata.create_all(locked, checkfirst=True)
            previous = self._rows(locked, keys)
            for row in rows:
                last = previous.get(row["asset"])
                if row["trained"] or last is None:
                    continue
                for column in _KEPT_FROM_LAST_GOOD:  # it keeps scoring with its last good version
                    if row[column] is None:
                        row[column] = last[column]
            for start in range(0, len(keys), 500):
                locked.execute(
                    self.table.delete().where(
                        self.table.c.source_table == self.source_table,
                        self.table.c.asset.in_(keys[start : start + 500]),
                    )
                )
            locked.execute(self.table.insert(), rows)
        logger.info("fleet state of %d assets written to %s", len(rows), self.name)

    def _rows(self, conn: sa.Connection, assets: list[str]) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        for start in range(0, len(assets), 500):
            stmt = sa.select(self.table).where(
                self.table.c.source_table == self.source_table,
                self.table.c.asset.in_(assets[start : start + 500]),
            )
            found.update({row["asset"]: dict(row) for row in conn.execute(stmt).mappings()})
        return found

    def _row(self, outcome: AssetOutcome, run_id: str, now: dt.datetime) -> dict[str, Any]:
        trained_at = None if outcome.trained_at is None else pd.Timestamp(outcome.trained_at)
        return {
            "source_table": self.source_table,
            "asset": outcome.asset,
            "status": outcome.status,
            "trained": outcome.trained,
            "version": outcome.version,
            "trained_at": None if trained_at is None else trained_at.to_pydatetime(),
            "samples": outcome.samples,
            "missing": outcome.missing,
            "reason": outcome.reason,
            "families": json.dumps(outcome.families, sort_keys=True) if outcome.families else None,
            "thresholds": (
                json.dumps(outcome.thresholds, sort_keys=True) if outcome.thresholds else None
            ),
            "expected_events_per_day": outcome.expected_events_per_day,
            "attention": "; ".join(outcome.attention) or None,
            "run_id": run_id,
            "updated_at": now,
        }

    def read(self) -> pd.DataFrame:
        """Every row of this source table, by asset (empty when the table does not exist).

        Raises:
            DatabaseError: the database failed.
        """
        columns = [column.name for column in self.table.columns]
        with database_errors(self.target, f"reading the fleet state from {self.name!r}"):
            if not table_exists(self.engine, self.name):
                return pd.DataFrame(columns=columns)
            stmt = (
                sa.select(self.table)
                .where(self.table.c.source_table == self.source_table)
                .order_by(self.table.c.asset)
            )
            with self.engine.connect() as conn:
                rows = [dict(row) for row in conn.execute(stmt).mappings()]
        frame = pd.DataFrame(rows, columns=columns)
        for column in ("trained_at", "updated_at"):
            frame[column] = pd.to_datetime(frame[column], utc=True)
        return frame
