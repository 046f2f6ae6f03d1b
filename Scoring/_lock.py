"""One write transaction per score run that holds a database lock for its (events table, asset).

Two score runs writing the same events at once would each read the stored events, neither
seeing the other's, and store one episode as two rows. The lock makes the second run's read
wait until the first one has committed:

- PostgreSQL: ``pg_advisory_xact_lock(key)``, released by the transaction's end, with ``key`` a
  stable 64-bit hash of the table and asset (the same in every process, unlike ``hash()``);
- SQLite: the database's own write lock, taken at the start with ``BEGIN IMMEDIATE`` (a plain
  ``BEGIN`` would take it only at the first write, after the read);
- other dialects: no lock (a warning says so); do not run their score runs concurrently.

A run that finds the lock taken logs that it waits, then waits for as long as the holder needs.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from sqlalchemy.engine import Connection

__all__ = ["TABLES_LOCK", "lock_key", "locked_transaction"]

TABLES_LOCK = "\0tables"
"""The "asset" of the lock under which a process creates or migrates a table of the store
(not an asset's lock: writers of different assets start together)."""

logger = logging.getLogger(__name__)

# SQLite waits for a busy lock at most this long (its largest value, ~24.8 days): as long as the
# holder needs, like pg_advisory_xact_lock. The connection's own timeout is restored afterwards.
_SQLITE_WAIT_MS = 2**31 - 1


def lock_key(*parts: str) -> int:
    """A signed 64-bit key from ``parts`` that every process computes alike (BLAKE2b)."""
    digest = hashlib.blake2b("\0".join(parts).encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


@contextmanager
def locked_transaction(
    conn: Connection, schema: str | None, table: str, asset: str
) -> Iterator[Connection]:
    """Begin a transaction on ``conn`` holding the writers' lock of ``(schema.table, asset)``.

    Commits when the block ends normally, rolls back when it raises; the lock ends with the
    transaction.

    Args:
        conn: a connection without an open transaction.
        schema: the table's schema (None: the connection's current schema on PostgreSQL).
        table: the events table name.
        asset: the asset written.

    Yields:
        The connection to run the transaction's statements on.

    Raises:
        sqlalchemy.exc.SQLAlchemyError: the database refused a statement (callers wrap it).
    """
    dialect = conn.dialect.name
    what = f"{table!r} (asset {asset!r})"
    if dialect == "sqlite":
        # Autocommit at the driver level, so that the BEGIN below is the transaction's own;
        # SQLAlchemy's commit and rollback still end it (the driver's commit()/rollback()).
        conn = conn.execution_options(isolation_level="AUTOCOMMIT")
    with conn.begin():
        if dialect == "postgresql":
            resolved = schema or _current_schema(conn)
            key = lock_key(resolved, table, asset)
            if not conn.execute(sa.select(sa.func.pg_try_advisory_xact_lock(key))).scalar_one():
                logger.info("waiting for another score run writing events to %s", what)
                conn.execute(sa.select(sa.func.pg_advisory_xact_lock(key)))
        elif dialect == "sqlite":
            _begin_immediate(conn, what)
        else:
            logger.warning(
                "no writers' lock on %s databases: concurrent score runs writing %s can store "
                "one episode as two events; run them one at a time (e.g. with flock)",
                dialect,
                what,
            )
        yield conn


def _current_schema(conn: Connection) -> str:
    """The connection's current schema, asked once per database connection (kept in its
    ``info``): a fleet task takes the lock of each of its assets on one pooled connection."""
    known = conn.info.get(_SCHEMA_INFO)
    if known is None:
        known = conn.execute(sa.select(sa.func.current_schema())).scalar_one()
        conn.info[_SCHEMA_INFO] = known
    return known


_SCHEMA_INFO = "scoring_lock_current_schema"


def _begin_immediate(conn: Connection, what: str) -> None:
    """``BEGIN IMMEDIATE``: take SQLite's write lock now, waiting for a holder to finish."""
    previous = int(conn.exec_driver_sql("PRAGMA busy_timeout").scalar_one())
    conn.exec_driver_sql("PRAGMA busy_timeout = 0")
    try:
        try:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        except sa.exc.OperationalError as exc:
            if "locked" not in str(exc.orig) and "busy" not in str(exc.orig):
                raise
            logger.info("waiting for another writer of the database to finish (%s)", what)
            conn.exec_driver_sql(f"PRAGMA busy_timeout = {_SQLITE_WAIT_MS}")
            conn.exec_driver_sql("BEGIN IMMEDIATE")
    finally:
        conn.exec_driver_sql(f"PRAGMA busy_timeout = {previous}")
