"""The embedded demo database: deterministic synthetic robot joint currents in SQLite.

Shaped like real telemetry of an 8-axis robot: ~1.891 s sampling with millisecond jitter,
a faint 64 s work cycle under sensor noise, idle stretches where every axis is exactly 0, a
slow upward drift on axis3, a few missing samples, and sustained injected anomalies whose
ground truth is stored beside the samples (table ``demo_injected_anomalies``).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from .config import DatabaseConfig
from .connection import DatabaseTarget, connect_engine
from .tables import define_table, float_columns, insert_chunks, table_exists, write_transaction

__all__ = [
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
_OWN_TABLES = (DEMO_TABLE, DEMO_LONG_TABLE, DEMO_ANOMALY_TABLE)
"""The only tables a demo build replaces; any other table in the file is the user's."""
_STALE_TEMP = re.compile(r"\.demo-[a-z0-9_]{8}\.sqlite(-journal|-wal|-shm)?")
DEMO_AXES = tuple(f"axis{k}" for k in range(1, 9))
DEMO_START = pd.Timestamp("2026-01-05 00:00:00", tz="UTC")
DEFAULT_ROWS = 100_000  # ~2.2 days at 1.891 s
_SEED = 20260105
_BASE_CURRENT = np.array([4.0, 9.0, 6.5, 3.0, 2.0, 1.5, 1.2, 0.8])  # amperes, axis1..axis8
_CYCLE_SECONDS = 64.0
_DRIFT_AXIS = 2  # axis3 (0-based)
_DRIFT_PER_DAY = 0.35  # amperes per day
# Idle stretches as (start, length), both fractions of the series, so they never overlap the
# injected anomalies below whatever the length: every axis exactly 0.
_IDLE = ((0.12, 0.007), (0.37, 0.0095), (0.61, 0.005), (0.86, 0.008))
# Injected sustained anomalies: (axis index 0-based, start fraction, samples, added amperes).
_ANOMALIES = (
    (1, 0.30, 18, 4.0),
    (4, 0.55, 12, 1.6),
    (0, 0.83, 25, 2.5),
    (6, 0.91, 9, 1.4),
    (3, 0.95, 40, 2.2),
)


@dataclass(frozen=True)
class DemoData:
    """The synthetic samples (WIDE, ``ts`` + ``axis1..axis8``) and the injected anomalies."""

    samples: pd.DataFrame
    anomalies: pd.DataFrame


def demo_data(rows: int = DEFAULT_ROWS) -> DemoData:
    """Generate the deterministic demo dataset (same ``rows`` → identical data).

    Raises:
        ValueError: ``rows`` is below 1000 (too short for idle stretches and anomalies).
    """
    if rows < 1000:
        raise ValueError(f"the demo database needs at least 1000 rows, got {rows}")
    rng = np.random.default_rng(_SEED)
    # Most intervals are the logger's nominal 1891 ms; the rest jitter by up to 40 ms, so the
    # median interval is exactly 1.891 s for any length, as on the real robot.
    jitter = rng.integers(-40, 41, size=rows - 1)
    step_ms = 1891 + np.where(rng.random(rows - 1) < 0.6, 0, jitter)
    offsets_ms = np.concatenate(([0], np.cumsum(step_ms)))
    ts = DEMO_START + pd.to_timedelta(offsets_ms, unit="ms")
    t = offsets_ms / 1000.0

    phases = np.linspace(0.0, 2 * np.pi, len(_BASE_CURRENT), endpoint=False)
    cycle = np.sin(2 * np.pi * t[:, None] / _CYCLE_SECONDS + phases[None, :])
    values = _BASE_CURRENT * (1.0 + 0.02 * cycle)
    values += rng.normal(0.0, 0.05, size=values.shape) * _BASE_CURRENT
    values[:, _DRIFT_AXIS] += _DRIFT_PER_DAY * t / 86_400.0

    for start_fraction, length_fraction in _IDLE:
        start = int(start_fraction * rows)
        values[start : start + max(1, int(length_fraction * rows)), :] = 0.0

    anomalies = []
    for axis, start_fraction, length, amps in _ANOMALIES:
        start = int(start_fraction * rows)
        values[start : start + length, axis] += amps
        anomalies.append(
            {
                "axis": DEMO_AXES[axis],
                "start": ts[start],
                "end": ts[start + length - 1],
                "samples": length,
                "added_amperes": amps,
            }
        )
    missing = rng.choice(rows, size=max(1, rows // 5000), replace=False)
    values[missing, 5] = np.nan  # a few dropped readings on axis6

    samples = pd.DataFrame(np.round(values, 4), columns=list(DEMO_AXES))
    samples.insert(0, "ts", ts)
    return DemoData(samples=samples, anomalies=pd.DataFrame(anomalies))


def _long(samples: pd.DataFrame) -> pd.DataFrame:
    """LONG layout ``ts, axis_id, value``; missing readings are absent rows, as in real logs."""
    long = samples.melt(id_vars="ts", var_name="axis", value_name="value").dropna()
    long["axis_id"] = long.pop("axis").str.removeprefix("axis").astype("int64")
    return long[["ts", "axis_id", "value"]].sort_values(["ts", "axis_id"], kind="stable")


def build_demo_database(
    path: Path, rows: int = DEFAULT_ROWS, schema: Literal["wide", "long"] = "wide"
) -> Path:
    """(Re)build the demo tables in the SQLite file at ``path``, all in one transaction.

    Only the demo's own tables (``robot_samples``, ``robot_samples_long`` and
    ``demo_injected_anomalies``) are replaced; every other table of the file (ingested
    data, events, scoring state) is kept with its rows. ``robot_samples`` (WIDE) is always
    written, so the default config keeps working; ``schema="long"`` adds
    ``robot_samples_long`` (``ts, axis_id, value``) with the same samples. A build that is
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
    anomaly_columns = {
        "axis": sa.String(32),
        "start": sa.DateTime(),
        "end": sa.DateTime(),
        "samples": sa.Integer(),
        "added_amperes": sa.Float(53),
    }
    tables.append((define_table(DEMO_ANOMALY_TABLE, anomaly_columns), data.anomalies))
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
