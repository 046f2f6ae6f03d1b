"""The fleet state table: one row per (source table, asset), written by every training run.

Columns: ``source_table``, ``asset`` (the key), ``status`` (``trained``, ``needs-data``,
``failed``), ``trained`` (whether the last run published a version), ``version`` and
``trained_at`` (the asset's last good version and when it was published: it keeps scoring with
it), ``samples`` (usable samples in the last run's window), ``missing`` (``needs-data``: how
many more it needs), ``reason``, ``families`` and ``thresholds`` (JSON of the last good
version), ``expected_events_per_day``, ``attention``, ``run_id``, ``updated_at``; and the
failure predictor's columns, written by ``predictor train`` (see :class:`PredictorState`):
``predictor_status``, ``predictor_version``, ``predictor_auc``, ``predictor_f1``,
``predictor_forewarning_s``, ``predictor_detail``, ``predictor_updated_at`` (NULL until the
asset's first predictor run).

A run writes all its rows in one transaction under the writers' lock of the table (see
``Scoring.locked_transaction``): delete the run's keys, insert the new rows. Re-running with
the same outcomes leaves the same rows (idempotent). An asset that was not trained this time
keeps the version, time, families and thresholds of its last good version. Training keeps
the predictor's columns of the row, ``predictor train`` touches only those (a row that does
not exist yet is made with status ``predictor-only``). A table made before the predictor's
columns existed gets them on its next write; reading it gives them as NULL.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from Database import (
    DatabaseTarget,
    add_missing_columns,
    database_errors,
    split_table_name,
    table_exists,
)
from Scoring import locked_transaction

from .outcome import AssetOutcome

__all__ = ["PREDICTOR_ONLY", "FleetStateStore", "PredictorState"]

logger = logging.getLogger(__name__)

_KEPT_FROM_LAST_GOOD = (
    "version",
    "trained_at",
    "families",
    "thresholds",
    "expected_events_per_day",
)

PREDICTOR_ONLY = "predictor-only"
"""Status of a row made by ``predictor train`` for an asset no training run recorded."""

# Kept by a predictor run that publishes no predictor (it keeps applying its last one).
_PREDICTOR_KEPT = ("predictor_version", "predictor_auc", "predictor_f1", "predictor_forewarning_s")


def _predictor_columns() -> list[sa.Column]:
    """The predictor's columns (nullable: added to tables made before them)."""
    return [
        sa.Column("predictor_status", sa.String(32), nullable=True),
        sa.Column("predictor_version", sa.String(64), nullable=True),
        sa.Column("predictor_auc", sa.Float(53), nullable=True),
        sa.Column("predictor_f1", sa.Float(53), nullable=True),
        sa.Column("predictor_forewarning_s", sa.Float(53), nullable=True),
        sa.Column("predictor_detail", sa.Text, nullable=True),
        sa.Column("predictor_updated_at", sa.DateTime(timezone=True), nullable=True),
    ]


_PREDICTOR_COLUMNS = tuple(column.name for column in _predictor_columns())


@dataclass(frozen=True)
class PredictorState:
    """One asset's outcome of ``predictor train``, as the fleet state table keeps it.

    Attributes:
        asset: the asset id as text (``""`` for a one-machine table).
        status: ``ok`` (a predictor was published), ``needs-labels`` (gated) or the
            ``ml_status`` code of the failure.
        version: the version published (None when none was: the row keeps its last one,
            with its metrics).
        auc, f1, forewarning_s: out-of-fold ROC AUC, F1 and mean forewarning in seconds.
        detail: the answer's detail (e.g. how many more incidents are needed).
    """

    asset: str
    status: str
    version: str | None = None
    auc: float | None = None
    f1: float | None = None
    forewarning_s: float | None = None
    detail: str = ""


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
            *_predictor_columns(),
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
        with self._transaction("the fleet state", keys) as (locked, previous):
            for row in rows:
                last = previous.get(row["asset"])
                # Every row has every predictor column (one insert takes rows of one shape): a
                # new asset's are empty, a stored one's are carried over.
                row.update(
                    {
                        column: None if last is None else last[column]
                        for column in _PREDICTOR_COLUMNS
                    }
                )
                if last is None:
                    continue
                if row["trained"]:
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

    def write_predictors(self, states: Sequence[PredictorState], run_id: str) -> None:
        """Store the outcomes of one ``predictor train`` run in the predictor's columns, all in
        one transaction; the training columns of existing rows are left as they are.

        Raises:
            DatabaseError: the database failed (nothing is stored).
        """
        if not states:
            return
        now = dt.datetime.now(dt.timezone.utc)
        keys = [state.asset for state in states]
        with self._transaction("the predictors' state", keys) as (locked, previous):
            for state in states:
                values = _predictor_values(state, now)
                last = previous.get(state.asset)
                if last is None:
                    locked.execute(self.table.insert(), [self._new_row(state, values, run_id, now)])
                    continue
                if state.version is None:  # it keeps applying its last predictor
                    values.update({column: last[column] for column in _PREDICTOR_KEPT})
                locked.execute(
                    self.table.update()
                    .where(
                        self.table.c.source_table == self.source_table,
                        self.table.c.asset == state.asset,
                    )
                    .values(values)
                )
        logger.info("predictor state of %d assets written to %s", len(states), self.name)

    def _new_row(
        self, state: PredictorState, values: dict[str, Any], run_id: str, now: dt.datetime
    ) -> dict[str, Any]:
        row = {column.name: None for column in self.table.columns}
        row.update(
            source_table=self.source_table,
            asset=state.asset,
            status=PREDICTOR_ONLY,
            trained=False,
            run_id=run_id,
            updated_at=now,
            **values,
        )
        return row

    @contextmanager
    def _transaction(
        self, what: str, keys: list[str]
    ) -> Iterator[tuple[sa.Connection, dict[str, dict[str, Any]]]]:
        """One transaction under the table's writers' lock, on a table with every column;
        yields the connection and the stored rows of ``keys`` by asset."""
        with (
            database_errors(self.target, f"writing {what} to {self.name!r}"),
            self.engine.connect() as conn,
            locked_transaction(conn, self.table.schema, self.table.name, "") as locked,
        ):
            self._metadata.create_all(locked, checkfirst=True)
            add_missing_columns(locked, self.table, _predictor_columns())
            yield locked, self._rows(locked, keys)

    def _present_columns(self, conn: sa.Connection) -> set[str]:
        columns = sa.inspect(conn).get_columns(self.table.name, schema=self.table.schema)
        return {column["name"] for column in columns}

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
            with self.engine.connect() as conn:
                present = self._present_columns(conn)
                stmt = (
                    sa.select(*(c for c in self.table.columns if c.name in present))
                    .where(self.table.c.source_table == self.source_table)
                    .order_by(self.table.c.asset)
                )
                rows = [dict(row) for row in conn.execute(stmt).mappings()]
        frame = pd.DataFrame(rows, columns=columns)  # columns an old table lacks: NULL
        for column in ("trained_at", "updated_at", "predictor_updated_at"):
            frame[column] = pd.to_datetime(frame[column], utc=True)
        return frame


def _predictor_values(state: PredictorState, now: dt.datetime) -> dict[str, Any]:
    return {
        "predictor_status": state.status,
        "predictor_version": state.version,
        "predictor_auc": state.auc,
        "predictor_f1": state.f1,
        "predictor_forewarning_s": state.forewarning_s,
        "predictor_detail": state.detail or None,
        "predictor_updated_at": now,
    }
