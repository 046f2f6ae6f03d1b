"""CSV ingest into SQLite and PostgreSQL: round trip, odd headers, all-or-nothing."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
from conftest import Db

from Database import DatabaseError, IngestError, ingest_csv, table_exists
from DataExtractionAnalysis import DataConfig, extract_window

CSV_WIDE = (
    "time,Axis #1,axis 2\n"
    "2026-01-05T00:00:00Z,1.5,10\n"
    "2026-01-05T00:00:02Z,0,\n"
    "2026-01-05 00:00:04+00:00,2.25,30\n"
)


def _csv(tmp_path: Path, text: str, name: str = "export.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_wide_csv_round_trip_with_spaces_and_hash_in_headers(any_db: Db, tmp_path: Path) -> None:
    table = any_db.table("robot_csv")
    result = ingest_csv(
        any_db.engine, any_db.target, _csv(tmp_path, CSV_WIDE), table, time_col="time", chunk_rows=2
    )
    assert (result.rows, result.axes, result.time_kind) == (3, ["Axis #1", "axis 2"], "timestamp")

    config = DataConfig(table=table, time_col="time", axes=["Axis #1", "axis 2"])
    frame = extract_window(any_db.engine, any_db.target, config).frame
    assert frame["Axis #1"].tolist() == [1.5, 0.0, 2.25]
    assert frame["axis 2"].iloc[[0, 2]].tolist() == [10.0, 30.0]
    assert pd.isna(frame["axis 2"].iloc[1])  # empty cell -> NULL -> NaN
    assert frame["ts"].iloc[2] == pd.Timestamp("2026-01-05 00:00:04", tz="UTC")


def test_long_csv_with_epoch_seconds(any_db: Db, tmp_path: Path) -> None:
    text = "ts,axis_id,value\n100.0,1,1.0\n100.0,2,2.0\n102.0,1,3.0\n102.0,2,4.0\n"
    table = any_db.table("long_csv")
    result = ingest_csv(any_db.engine, any_db.target, _csv(tmp_path, text), table, layout="long")
    assert (result.rows, result.time_kind) == (4, "epoch")
    frame = extract_window(any_db.engine, any_db.target, DataConfig(table=table, axes=[1, 2])).frame
    assert frame.to_dict("list") == {"ts": [100.0, 102.0], "axis1": [1.0, 3.0], "axis2": [2.0, 4.0]}


def test_bad_value_writes_nothing(any_db: Db, tmp_path: Path) -> None:
    text = CSV_WIDE + "2026-01-05T00:00:06Z,abc,1\n"
    table = any_db.table("bad")
    with pytest.raises(IngestError, match=r"column 'Axis #1', CSV line 5: 'abc' is not a finite"):
        ingest_csv(
            any_db.engine, any_db.target, _csv(tmp_path, text), table, time_col="time", chunk_rows=2
        )
    assert not table_exists(any_db.engine, table)


def test_missing_time_column_names_the_columns(sqlite_db: Db, tmp_path: Path) -> None:
    with pytest.raises(IngestError, match=r"no column\(s\) \['ts'\]; its columns are \['time'"):
        ingest_csv(sqlite_db.engine, sqlite_db.target, _csv(tmp_path, CSV_WIDE), "t")


def test_existing_table_is_refused_unless_appending(sqlite_db: Db, tmp_path: Path) -> None:
    path = _csv(tmp_path, CSV_WIDE)
    ingest_csv(sqlite_db.engine, sqlite_db.target, path, "t", time_col="time")
    with pytest.raises(DatabaseError, match=r"already exists .* --if-exists append"):
        ingest_csv(sqlite_db.engine, sqlite_db.target, path, "t", time_col="time")
    ingest_csv(sqlite_db.engine, sqlite_db.target, path, "t", time_col="time", if_exists="append")
    with sqlite_db.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM t")).scalar() == 6


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "time,a\n2026-01-05T00:00:00Z,1\n2026-01-05T00:00:01Z,2,9\n",
            r"malformed: .*Expected 2 fields in line 3, saw 3",
        ),
        (
            'time,a\n2026-01-05T00:00:00Z,1\n"2026-01-05T00:00:01Z,2\n',
            r"malformed: .*EOF inside string",
        ),
        (
            "time,a\n2026-01-05T00:00:00Z,1\n2026-01-05T00:00:01Z,2\nnot-a-time,3\n",
            r"column 'time', CSV line 4: 'not-a-time' is not an ISO-8601 timestamp",
        ),
    ],
)
def test_malformed_csv_is_refused_with_its_line(
    sqlite_db: Db, tmp_path: Path, text: str, message: str
) -> None:
    with pytest.raises(IngestError, match=message):
        ingest_csv(sqlite_db.engine, sqlite_db.target, _csv(tmp_path, text), "t", time_col="time")
    assert not table_exists(sqlite_db.engine, "t")
