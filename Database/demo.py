"""The embedded demo database: the synthetic robot of :mod:`Database.demo_signals` in SQLite.

``robot_samples`` (WIDE: ``ts``, ``axis1..axis8``), optionally ``robot_samples_long``
(``ts, axis_id, value``), and the labelled anomaly windows in ``demo_injected_anomalies``
(``start_ts, end_ts, axis, kind, severity``: the shipped config's ``labels.table``); and the
demo fleet of :mod:`Database.demo_fleet`: ``robot_fleet`` (``ts, robot_id, axis1..axis8``) and
``robot_fleet_labels``.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Literal

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from .config import DatabaseConfig
from .connection import DatabaseTarget, connect_engine
from .demo_fleet import FLEET_ASSET_COLUMN, FLEET_LABELS_TABLE, FLEET_TABLE, fleet_demo_data
from .demo_signals import DEFAULT_ROWS, DEMO_AXES, DEMO_START, DemoData, demo_data
from .tables import define_table, float_columns, insert_chunks, table_exists, write_transaction

__all__ = [
    "DEMO_ANOMALY_TABLE",
    "DEMO_AXES",
    "DEMO_LONG_TABLE",
    "DEMO_START",
    "DEMO_TABLE",
    "DemoData",
    "build_demo_database",
    "demo_data",
    "ensure_demo_database",
]

logger = logging.getLogger(__name__)

DEMO_TABLE = "robot_samples"
DEMO_LONG_TABLE = "robot_samples_long"
DEMO_ANOMALY_TABLE = "demo_injected_anomalies"
_OWN_TABLES = (DEMO_TABLE, DEMO_LONG_TABLE, DEMO_ANOMALY_TABLE, FLEET_TABLE, FLEET_LABELS_TABLE)
"""The only tables a demo build replaces; any other table in the file is the user's."""
_STALE_TEMP = re.compile(r"\.demo-[a-z0-9_]{8}\.sqlite(-journal|-wal|-shm)?")


def _long(samples: pd.DataFrame) -> pd.DataFrame:
    """LONG layout ``ts, axis_id, value``; missing readings are absent rows, as in real logs."""
    long = samples.melt(id_vars="ts", var_name="axis", value_name="value").dropna()
    long["axis_id"] = long.pop("axis").str.removeprefix("axis").astype("int64")
    return long[["ts", "axis_id", "value"]].sort_values(["ts", "axis_id"], kind="stable")


def build_demo_database(
    path: Path, rows: int = DEFAULT_ROWS, schema: Literal["wide", "long"] = "wide"
) -> Path:
    """(Re)build the demo tables in the SQLite file at ``path``, all in one transaction.

    Only the demo's own tables (``robot_samples``, ``robot_samples_long``,
    ``demo_injected_anomalies``, ``robot_fleet`` and ``robot_fleet_labels``) are replaced;
    every other table of the file (ingested data, events, scoring state) is kept with its
    rows. ``robot_samples`` (WIDE) is always written, so the default config keeps working;
    ``schema="long"`` adds ``robot_samples_long`` (``ts, axis_id, value``) with the same
    samples. A build that is
    killed leaves the file as it was (SQLite rolls the unfinished transaction back).

    Returns:
        ``path``.

    Raises:
        ValueError: ``rows`` is below 1000.
        DatabaseError: the file cannot be written (e.g. another process holds its lock).
    """
    _build(path, schema, data=demo_data(rows), replace=True)
    logger.info("built the embedded demo database %s (%d rows, %s layout)", path, rows, schema)
    return path


def ensure_demo_database(path: Path) -> Path:
    """Build the demo tables at ``path`` on first use (file or ``robot_samples`` missing).

    Existing demo tables are left as they are; the check runs under SQLite's write lock, so
    runs starting together build the tables once.

    Raises:
        DatabaseError: the file cannot be opened or written.
    """
    if _build(path, "wide", data=None, replace=False):
        logger.info("created the embedded demo database at %s (first use)", path)
    return path


def _build(
    path: Path, schema: Literal["wide", "long"], *, data: DemoData | None, replace: bool
) -> bool:
    """Write the demo tables into ``path``; False when not ``replace`` and they exist."""
    _remove_stale_temp_files(path.parent)
    target = DatabaseTarget(url=sa.URL.create("sqlite", database=str(path)), embedded=True)
    engine = connect_engine(target, DatabaseConfig(), access="create")
    try:
        with write_transaction(engine, target, f"building the demo database {path}") as conn:
            if not replace and table_exists(conn, DEMO_TABLE):
                return False
            _write_tables(conn, data or demo_data(), schema)
    finally:
        engine.dispose()
    return True


def _write_tables(conn: Connection, data: DemoData, schema: Literal["wide", "long"]) -> None:
    """Replace the demo's own tables on ``conn``; log the other tables, which stay."""
    for name in _OWN_TABLES:
        sa.Table(name, sa.MetaData()).drop(conn, checkfirst=True)
    kept = sorted(sa.inspect(conn).get_table_names())
    tables: list[tuple[sa.Table, pd.DataFrame]] = [
        (
            define_table(DEMO_TABLE, {"ts": sa.DateTime(), **float_columns(DEMO_AXES)}, "ts"),
            data.samples,
        )
    ]
    if schema == "long":
        long_columns = {"ts": sa.DateTime(), "axis_id": sa.Integer(), "value": sa.Float(53)}
        tables.append((define_table(DEMO_LONG_TABLE, long_columns, "ts"), _long(data.samples)))
    label_columns = {
        "start_ts": sa.DateTime(),
        "end_ts": sa.DateTime(),
        "axis": sa.String(32),
        "kind": sa.String(32),
        "severity": sa.String(16),
    }
    tables.append((define_table(DEMO_ANOMALY_TABLE, label_columns), data.labels))
    fleet = fleet_demo_data(max(1000, len(data.samples) // 8))
    fleet_columns = {
        "ts": sa.DateTime(),
        FLEET_ASSET_COLUMN: sa.String(32),
        **float_columns(DEMO_AXES),
    }
    fleet_table = define_table(FLEET_TABLE, fleet_columns)
    # Every fleet query reads one asset's time range.
    sa.Index(f"ix_{FLEET_TABLE}_asset_ts", fleet_table.c[FLEET_ASSET_COLUMN], fleet_table.c.ts)
    tables.append((fleet_table, fleet.samples))
    fleet_labels = {**label_columns, FLEET_ASSET_COLUMN: sa.String(32)}
    tables.append((define_table(FLEET_LABELS_TABLE, fleet_labels), fleet.labels))
    for table, frame in tables:
        table.metadata.create_all(conn)
        insert_chunks(conn, table, [frame])
    if kept:
        logger.info("demo tables replaced; the other tables stay as they were: %s", kept)


def _remove_stale_temp_files(folder: Path) -> None:
    """Delete temporary files that an earlier, killed demo build left in ``folder``.

    Earlier versions built the database in a file named ``.demo-XXXXXXXX.sqlite`` and renamed
    it; a build killed before the rename left that file for good. Builds no longer write one.
    """
    if not folder.is_dir():
        return
    for entry in folder.iterdir():
        if _STALE_TEMP.fullmatch(entry.name) and entry.is_file():
            logger.info("removing %s, left by an interrupted demo build", entry)
            entry.unlink(missing_ok=True)
