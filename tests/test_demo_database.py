"""Building the embedded demo database: only its own tables are replaced, nothing is left behind."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from conftest import PROJECT_ROOT

from Database import (
    DEFAULT_DEMO_ROWS,
    DEMO_LONG_TABLE,
    DEMO_TABLE,
    FLEET_LABELS_TABLE,
    FLEET_ROBOTS,
    FLEET_TABLE,
    DatabaseConfig,
    DatabaseTarget,
    build_demo_database,
    connect_engine,
    demo_data,
    ensure_demo_database,
    ingest_csv,
)
from Scoring import EventStore, extract_events

ANOMALY_TABLE = "demo_injected_anomalies"


def _engine(path: Path) -> tuple[sa.Engine, DatabaseTarget]:
    target = DatabaseTarget(url=sa.URL.create("sqlite", database=str(path)), embedded=False)
    return connect_engine(target, DatabaseConfig()), target


def _counts(path: Path) -> dict[str, int]:
    engine, _ = _engine(path)
    try:
        with engine.connect() as conn:
            names = sa.inspect(conn).get_table_names()
            return {
                name: conn.execute(sa.text(f'SELECT count(*) FROM "{name}"')).scalar_one()
                for name in names
            }
    finally:
        engine.dispose()


def _add_user_tables(path: Path, tmp_path: Path) -> None:
    """An ingested table (3 rows) and the events tables of a score run (1 event, 1 state)."""
    engine, target = _engine(path)
    csv = tmp_path / "mine.csv"
    csv.write_text("ts,a\n2026-01-05T00:00:00Z,1\n2026-01-05T00:00:02Z,2\n2026-01-05T00:00:04Z,3\n")
    ingest_csv(engine, target, csv, "mine")
    ts = pd.Series(pd.date_range("2026-01-05", periods=5, freq="2s", tz="UTC"))
    events = extract_events(
        ts,
        {"axis1": np.array([0.0, 5.0, 5.0, 5.0, 0.0])},
        {"axis1": ["ok", "alert", "alert", "alert", "ok"]},
        {"axis1": {"MinC": 1.0, "MaxC": 10.0, "T_long_steps": 2, "T_short_steps": 2}},
        axes=["axis1"],
    )
    with EventStore(engine, target, "anomaly_events", DEMO_TABLE).session("v1", "r1") as writer:
        writer.add(events, window_ts=ts, previous_ts=None, next_ts=None)
        writer.advance_state(ts.iloc[-1])
    engine.dispose()


USER_TABLES = {"mine": 3, "anomaly_events": 1, "anomaly_events_state": 1}
LABELS = len(demo_data(1000).labels)  # every labelled anomaly, whatever the size
# The demo fleet: 1000 rows per robot at least (robot_05 always 1000), and the fault's label.
FLEET = {FLEET_TABLE: 1000 * len(FLEET_ROBOTS), FLEET_LABELS_TABLE: 1}


def test_a_rebuild_replaces_only_the_demo_tables(tmp_path: Path) -> None:
    path = tmp_path / "demo.sqlite"
    build_demo_database(path, rows=1000, schema="long")
    _add_user_tables(path, tmp_path)
    assert _counts(path) == {
        DEMO_TABLE: 1000,
        DEMO_LONG_TABLE: _counts(path)[DEMO_LONG_TABLE],
        ANOMALY_TABLE: LABELS,
        **FLEET,
        **USER_TABLES,
    }

    build_demo_database(path, rows=1200, schema="wide")

    # The LONG table is the demo's own: a WIDE rebuild drops it rather than keep stale rows.
    assert _counts(path) == {DEMO_TABLE: 1200, ANOMALY_TABLE: LABELS, **FLEET, **USER_TABLES}
    engine, _ = _engine(path)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT a FROM mine ORDER BY ts")).scalars().all() == [
            1.0,
            2.0,
            3.0,
        ]
        event = conn.execute(sa.text("SELECT axis, severity, samples FROM anomaly_events")).one()
        assert tuple(event) == ("axis1", "alert", 3)
    engine.dispose()


def test_first_use_builds_the_demo_tables_beside_existing_ones(tmp_path: Path) -> None:
    path = tmp_path / "demo.sqlite"
    build_demo_database(path, rows=1000)
    _add_user_tables(path, tmp_path)
    engine, _ = _engine(path)
    with engine.begin() as conn:
        conn.execute(sa.text(f"DROP TABLE {DEMO_TABLE}"))
    engine.dispose()

    ensure_demo_database(path)
    assert _counts(path)[DEMO_TABLE] == DEFAULT_DEMO_ROWS  # the default size, as on a fresh clone
    assert {name: _counts(path)[name] for name in USER_TABLES} == USER_TABLES

    ensure_demo_database(path)  # present now: left as it is
    assert _counts(path)[DEMO_TABLE] == DEFAULT_DEMO_ROWS


def test_temporary_files_of_an_interrupted_build_are_removed_by_the_next(tmp_path: Path) -> None:
    stale = [".demo-k2j4_x9a.sqlite", ".demo-k2j4_x9a.sqlite-journal"]
    kept = [".demo-notes.sqlite", "plant.sqlite", "demo-abcdefgh.sqlite"]
    for name in stale + kept:
        (tmp_path / name).write_bytes(b"left over")
    build_demo_database(tmp_path / "demo.sqlite", rows=1000)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*kept, "demo.sqlite"])


KILLED_BUILD = """
import sys
from pathlib import Path
import Database.demo as demo

real_insert = demo.insert_chunks

def insert_then_wait(conn, table, chunks, **options):
    result = real_insert(conn, table, chunks, **options)
    if table.name == "demo_injected_anomalies":  # the last table: every table rewritten
        print("written", flush=True)
        sys.stdin.read()  # until killed
    return result

demo.insert_chunks = insert_then_wait
demo.build_demo_database(Path(sys.argv[1]), rows=1500)
"""


def test_a_killed_build_leaves_the_file_as_it_was_and_nothing_behind(tmp_path: Path) -> None:
    path = tmp_path / "demo.sqlite"
    build_demo_database(path, rows=1000)
    _add_user_tables(path, tmp_path)
    before = _counts(path)
    files_before = sorted(p.name for p in tmp_path.iterdir())

    with subprocess.Popen(
        [sys.executable, "-c", KILLED_BUILD, str(path)],
        cwd=PROJECT_ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as child:
        try:
            assert child.stdout is not None
            # Every demo table is rewritten inside the open, uncommitted transaction.
            assert child.stdout.readline() == "written\n"
        finally:
            child.send_signal(signal.SIGKILL)
            child.wait()
    assert child.returncode == -signal.SIGKILL

    assert _counts(path) == before  # rolled back on the next open
    build_demo_database(path, rows=1100)
    assert _counts(path) == {**before, DEMO_TABLE: 1100}
    assert sorted(p.name for p in tmp_path.iterdir()) == files_before


@pytest.mark.parametrize("rows", [0, 999])
def test_too_few_rows_are_refused_before_the_file_is_touched(tmp_path: Path, rows: int) -> None:
    with pytest.raises(ValueError, match=f"at least 1000 rows, got {rows}"):
        build_demo_database(tmp_path / "demo.sqlite", rows=rows)
    assert list(tmp_path.iterdir()) == []
