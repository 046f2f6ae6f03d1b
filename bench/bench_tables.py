"""Benchmark tables in PostgreSQL, generated server-side and reused when already complete.

``bench_robot_wide``: ``ts timestamptz`` plus ``axis1 .. axis8 double precision``, one row every
0.5 s from 2026-01-01T00:00:00Z. Each axis is ``base + slope * t + noise`` (Gaussian noise, Box-
Muller from ``random()`` after ``setseed``), idle (all axes exactly 0) for 2 minutes of every
hour, and NULL (missing) at one row in every ~1M. ``bench_robot_long`` holds the same samples as
``(ts, axis_id, value)`` rows, 8 per sample.
"""

from __future__ import annotations

import datetime as dt
import logging
import time

import sqlalchemy as sa

__all__ = [
    "AXES",
    "DT_SECONDS",
    "LONG_TABLE",
    "T0",
    "WIDE_TABLE",
    "ensure_long_table",
    "ensure_wide_table",
    "window",
]

logger = logging.getLogger(__name__)

WIDE_TABLE = "bench_robot_wide"
LONG_TABLE = "bench_robot_long"
AXES = [f"axis{k}" for k in range(1, 9)]
DT_SECONDS = 0.5
T0 = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
_IDLE_EVERY = 7200  # samples per hour at 2 Hz
_IDLE_FOR = 240  # 2 minutes
_SEED = 0.42


def window(rows: int) -> tuple[dt.datetime, dt.datetime]:
    """The training window ``[start, end)`` covering ``rows`` samples of the bench tables."""
    return T0, T0 + dt.timedelta(seconds=rows * DT_SECONDS)


def _axis_expression(k: int) -> str:
    base, slope, sigma = 10.0 + 2.5 * k, (-1) ** k * 1e-7 * k, 0.5 + 0.1 * k
    noise = "sqrt(-2.0 * ln(1.0 - random())) * cos(2.0 * pi() * random())"
    return (
        f"CASE WHEN i % {_IDLE_EVERY} < {_IDLE_FOR} THEN 0.0 "
        f"WHEN i % 999983 = {k} THEN NULL "
        f"ELSE {base} + {slope} * (i * {DT_SECONDS}) + {sigma} * {noise} END"
    )


def _row_count(conn: sa.Connection, table: str) -> int | None:
    exists = conn.execute(sa.text("SELECT to_regclass(:t) IS NOT NULL"), {"t": table}).scalar()
    if not exists:
        return None
    return int(conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one())


def _vacuum_analyze(engine: sa.Engine, table: str) -> None:
    # Sets hint bits and the visibility map now, so the first timed read does not write pages.
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text(f"VACUUM ANALYZE {table}"))


def ensure_wide_table(engine: sa.Engine, rows: int) -> bool:
    """Create ``bench_robot_wide`` with ``rows`` samples unless it already holds exactly that.

    Returns True when the table was (re)built.
    """
    with engine.begin() as conn:
        if _row_count(conn, WIDE_TABLE) == rows:
            return False
    logger.info("building %s with %d rows (server-side generate_series)", WIDE_TABLE, rows)
    started = time.perf_counter()
    columns = ", ".join(f"{axis} double precision" for axis in AXES)
    values = ",\n  ".join(f"{_axis_expression(k)} AS axis{k}" for k in range(1, 9))
    with engine.begin() as conn:
        conn.execute(sa.text(f"DROP TABLE IF EXISTS {WIDE_TABLE}"))
        conn.execute(sa.text(f"CREATE TABLE {WIDE_TABLE} (ts timestamptz NOT NULL, {columns})"))
        conn.execute(sa.text("SELECT setseed(:seed)"), {"seed": _SEED})
        conn.execute(
            sa.text(
                f"INSERT INTO {WIDE_TABLE}\n"
                f"SELECT :t0 + i * interval '{int(DT_SECONDS * 1000)} milliseconds',\n  {values}\n"
                "FROM generate_series(0, :n - 1) AS i"
            ),
            {"t0": T0, "n": rows},
        )
        conn.execute(sa.text(f"CREATE INDEX ON {WIDE_TABLE} (ts)"))
    _vacuum_analyze(engine, WIDE_TABLE)
    logger.info("built %s in %.1f s", WIDE_TABLE, time.perf_counter() - started)
    return True


def ensure_long_table(engine: sa.Engine, rows: int) -> bool:
    """Create ``bench_robot_long`` (8 rows per sample) from the wide table unless complete.

    Returns True when the table was (re)built.
    """
    with engine.begin() as conn:
        if _row_count(conn, LONG_TABLE) == rows * len(AXES):
            return False
    ensure_wide_table(engine, rows)
    logger.info("building %s with %d rows from %s", LONG_TABLE, rows * len(AXES), WIDE_TABLE)
    started = time.perf_counter()
    unnest = ", ".join(AXES)
    with engine.begin() as conn:
        conn.execute(sa.text(f"DROP TABLE IF EXISTS {LONG_TABLE}"))
        conn.execute(
            sa.text(
                f"CREATE TABLE {LONG_TABLE} "
                "(ts timestamptz NOT NULL, axis_id integer NOT NULL, value double precision)"
            )
        )
        conn.execute(
            sa.text(
                f"INSERT INTO {LONG_TABLE}\n"
                f"SELECT w.ts, a.axis_id, a.value FROM {WIDE_TABLE} AS w,\n"
                f"  unnest(ARRAY[{unnest}]) WITH ORDINALITY AS a(value, axis_id)\n"
                "ORDER BY w.ts, a.axis_id"
            )
        )
        conn.execute(sa.text(f"CREATE INDEX ON {LONG_TABLE} (ts, axis_id)"))
    _vacuum_analyze(engine, LONG_TABLE)
    logger.info("built %s in %.1f s", LONG_TABLE, time.perf_counter() - started)
    return True
