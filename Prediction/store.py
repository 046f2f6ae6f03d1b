"""The failure-risk table: one probability per asset, source table and time bucket.

``predictor.table`` (created when missing): ``asset``, ``source_table``, ``bucket_start`` (the
key), ``probability``, ``model_version``, ``computed_at``. :meth:`RiskStore.write` writes in
batches, each one transaction that first deletes the rows of its buckets: writing the same
buckets again replaces them, never duplicates.
"""

from __future__ import annotations

import datetime as dt
import logging
import sys

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from Database import DatabaseTarget, database_errors, split_table_name, write_transaction

__all__ = ["RiskStore"]

logger = logging.getLogger(__name__)


class RiskStore:
    """The risk rows of one source table and asset.

    Args:
        engine, target: the data's database.
        table: ``predictor.table``.
        source_table: ``data.table``.
        asset: the asset (empty: the table is one machine).
    """

    def __init__(
        self, engine: Engine, target: DatabaseTarget, table: str, source_table: str, asset: str
    ) -> None:
        schema, name = split_table_name(table)
        self.engine, self.target = engine, target
        self.source_table, self.asset = source_table, asset
        self.table = sa.Table(
            name,
            sa.MetaData(schema=schema),
            sa.Column("asset", sa.String(128), primary_key=True),
            sa.Column("source_table", sa.String(255), primary_key=True),
            sa.Column("bucket_start", sa.DateTime(timezone=True), primary_key=True),
            sa.Column("probability", sa.Float(53), nullable=False),
            sa.Column("model_version", sa.String(64), nullable=False),
            sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        )

    def _mine(self) -> list[sa.ColumnElement[bool]]:
        return [self.table.c.asset == self.asset, self.table.c.source_table == self.source_table]

    def newest_bucket(self) -> pd.Timestamp | None:
        """The newest bucket written (None: none, or no table yet)."""
        table = self.table
        with (
            database_errors(self.target, f"reading {table.fullname}"),
            self.engine.connect() as conn,
        ):
            if not sa.inspect(conn).has_table(table.name, schema=table.schema):
                return None
            newest = conn.execute(
                sa.select(sa.func.max(table.c.bucket_start)).where(*self._mine())
            ).scalar_one()
        return None if newest is None else pd.to_datetime(newest, utc=True)

    def write(self, probability: pd.Series, version: str, batch_rows: int) -> int:
        """Write ``probability`` (indexed by bucket start), ``batch_rows`` per transaction, with
        a progress bar on a terminal and a log line per batch; returns the rows written.

        Raises:
            DatabaseError: the database failed (the batches committed before stay).
        """
        from tqdm import tqdm

        table = self.table
        now = dt.datetime.now(dt.timezone.utc)
        name = self.asset or "machine"
        written = 0
        with tqdm(
            total=len(probability),
            unit="bucket",
            desc=f"apply {name}",
            disable=not sys.stderr.isatty(),
        ) as bar:
            for offset in range(0, len(probability), batch_rows):
                part = probability.iloc[offset : offset + batch_rows]
                rows = [
                    {
                        "asset": self.asset,
                        "source_table": self.source_table,
                        "bucket_start": bucket.to_pydatetime(),
                        "probability": float(value),
                        "model_version": version,
                        "computed_at": now,
                    }
                    for bucket, value in zip(part.index, part.to_numpy(), strict=True)
                ]
                with write_transaction(
                    self.engine, self.target, f"writing {table.fullname}"
                ) as conn:
                    table.create(conn, checkfirst=True)
                    conn.execute(
                        table.delete().where(
                            *self._mine(),
                            table.c.bucket_start >= rows[0]["bucket_start"],
                            table.c.bucket_start <= rows[-1]["bucket_start"],
                        )
                    )
                    conn.execute(table.insert(), rows)
                written += len(rows)
                bar.update(len(rows))
                logger.info("apply %s: %d of %d buckets written", name, written, len(probability))
        return written
