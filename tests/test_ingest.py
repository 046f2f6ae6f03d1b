"""CSV ingest into SQLite and PostgreSQL: round trip, odd headers, all-or-nothing."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
from conftest import Db

from Database import (
    DatabaseError,
    IngestError,
    float_columns,
    ingest_csv,
    parse_delimiter,
    table_exists,
    write_chunks,
)
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


def test_a_duplicate_header_is_refused_with_the_column_and_line(
    sqlite_db: Db, tmp_path: Path
) -> None:
    text = "ts,axis1,axis2,axis1\n2026-01-05T00:00:00Z,1,2,3\n"
    with pytest.raises(
        IngestError, match=r"line 1 \(header\): column 'axis1' appears twice \(columns 2 and 4\)"
    ):
        ingest_csv(sqlite_db.engine, sqlite_db.target, _csv(tmp_path, text), "t")
    assert not table_exists(sqlite_db.engine, "t")


@pytest.mark.parametrize(
    ("delimiter", "hint"),
    [
        (";", "looks like the file uses ';' — pass --delimiter ';'"),
        ("\t", "uses tabs — pass --delimiter tab"),
    ],
)
def test_another_delimiter_is_recognised_and_can_be_passed(
    sqlite_db: Db, tmp_path: Path, delimiter: str, hint: str
) -> None:
    text = CSV_WIDE.replace(",", delimiter)
    path = _csv(tmp_path, text)
    with pytest.raises(IngestError, match=re.escape(hint)):
        ingest_csv(sqlite_db.engine, sqlite_db.target, path, "t", time_col="time")
    assert not table_exists(sqlite_db.engine, "t")

    result = ingest_csv(
        sqlite_db.engine, sqlite_db.target, path, "t", time_col="time", delimiter=delimiter
    )
    assert (result.rows, result.axes) == (3, ["Axis #1", "axis 2"])
    config = DataConfig(table="t", time_col="time", axes=["Axis #1", "axis 2"])
    frame = extract_window(sqlite_db.engine, sqlite_db.target, config).frame
    assert frame["Axis #1"].tolist() == [1.5, 0.0, 2.25]


@pytest.mark.parametrize("text", ["ab", "", '"', "\n"])
def test_a_delimiter_must_be_one_plain_character(text: str) -> None:
    with pytest.raises(IngestError, match="is not a delimiter: give one character"):
        parse_delimiter(text)


def test_tab_can_be_named() -> None:
    assert parse_delimiter("tab") == parse_delimiter("\\t") == "\t"


def _rows(db: Db, table: str, order: str) -> list[tuple[object, ...]]:
    with db.engine.connect() as conn:
        return [
            tuple(row) for row in conn.execute(sa.text(f"SELECT * FROM {table} ORDER BY {order}"))
        ]


def test_append_new_skips_rows_already_stored_or_repeated(any_db: Db, tmp_path: Path) -> None:
    table = any_db.table("robot")
    first = "ts,a\n2026-01-05T00:00:00Z,1\n2026-01-05T00:00:02Z,2\n"
    ingest_csv(any_db.engine, any_db.target, _csv(tmp_path, first, "first.csv"), table)
    # 00:00:02 is stored (in another spelling of the same instant), 00:00:04 comes twice.
    second = (
        "ts,a\n2026-01-05 01:00:02+01:00,20\n2026-01-05T00:00:04Z,4\n"
        "2026-01-05T00:00:04Z,40\n2026-01-05T00:00:06Z,6\n"
    )
    result = ingest_csv(
        any_db.engine,
        any_db.target,
        _csv(tmp_path, second, "second.csv"),
        table,
        if_exists="append-new",
        chunk_rows=2,
    )
    assert (result.rows, result.skipped) == (2, 2)
    frame = extract_window(any_db.engine, any_db.target, DataConfig(table=table, axes=["a"])).frame
    assert frame["a"].tolist() == [1.0, 2.0, 4.0, 6.0]

    again = ingest_csv(
        any_db.engine,
        any_db.target,
        _csv(tmp_path, second, "second.csv"),
        table,
        if_exists="append-new",
    )
    assert (again.rows, again.skipped) == (0, 4)


def test_append_new_on_long_epoch_rows_keys_on_time_and_axis_id(any_db: Db, tmp_path: Path) -> None:
    table = any_db.table("long")
    first = "ts,axis_id,value\n100.0,1,1.0\n100.0,2,2.0\n"
    ingest_csv(any_db.engine, any_db.target, _csv(tmp_path, first, "a.csv"), table, layout="long")
    second = "ts,axis_id,value\n100.0,1,9.0\n100.0,3,3.0\n102.5,1,4.0\n102.5,1,8.0\n"
    result = ingest_csv(
        any_db.engine,
        any_db.target,
        _csv(tmp_path, second, "b.csv"),
        table,
        layout="long",
        if_exists="append-new",
    )
    assert (result.rows, result.skipped, result.axes) == (2, 2, [1, 3])
    assert _rows(any_db, table, "ts, axis_id") == [
        (100.0, 1, 1.0),
        (100.0, 2, 2.0),
        (100.0, 3, 3.0),
        (102.5, 1, 4.0),
    ]


def test_append_new_is_all_or_nothing(sqlite_db: Db, tmp_path: Path) -> None:
    ingest_csv(
        sqlite_db.engine, sqlite_db.target, _csv(tmp_path, CSV_WIDE, "a.csv"), "t", time_col="time"
    )
    bad = "time,Axis #1,axis 2\n2026-01-05T00:00:06Z,6,6\n2026-01-05T00:00:08Z,x,8\n"
    with pytest.raises(IngestError, match=r"column 'Axis #1', CSV line 3: 'x' is not a finite"):
        ingest_csv(
            sqlite_db.engine,
            sqlite_db.target,
            _csv(tmp_path, bad, "b.csv"),
            "t",
            time_col="time",
            if_exists="append-new",
            chunk_rows=1,
        )
    assert len(_rows(sqlite_db, "t", "time")) == 3


def _other_writer_is_locked_out(db: Db, table: str) -> None:
    """Try to start writing ``table`` from another connection without waiting."""
    if db.target.dialect == "sqlite":
        other = sqlite3.connect(db.target.url.database, timeout=0, isolation_level=None)
        try:
            with pytest.raises(sqlite3.OperationalError, match="database is locked"):
                other.execute("BEGIN IMMEDIATE")
        finally:
            other.close()
    else:
        with (
            pytest.raises(sa.exc.OperationalError, match="could not obtain lock"),
            db.engine.connect() as conn,
        ):
            schema, name = table.split(".")
            conn.execute(sa.text(f'LOCK TABLE "{schema}"."{name}" IN ROW EXCLUSIVE MODE NOWAIT'))


def test_append_new_holds_off_other_writers_until_it_commits(any_db: Db, tmp_path: Path) -> None:
    table = any_db.table("locked")
    columns = {"ts": sa.DateTime(timezone=True), **float_columns(["a"])}
    rows = pd.DataFrame({"ts": pd.to_datetime(["2026-01-05T00:00:00Z"], utc=True), "a": [1.0]})
    write_chunks(any_db.engine, any_db.target, table, columns, [rows])
    later = rows.assign(ts=rows["ts"] + pd.Timedelta(seconds=2))
    checked = []

    def chunks() -> Iterator[pd.DataFrame]:
        # Runs inside the append-new transaction, which takes the lock when it begins.
        _other_writer_is_locked_out(any_db, table)
        checked.append(True)
        yield pd.concat([rows, later])

    result = write_chunks(
        any_db.engine,
        any_db.target,
        table,
        columns,
        chunks(),
        if_exists="append-new",
        key_columns=["ts"],
    )
    assert checked == [True]
    assert (result.rows, result.skipped) == (1, 1)
    with any_db.engine.begin() as conn:  # committed: others write again
        conn.execute(sa.text(f"DELETE FROM {table}"))


def test_a_long_axis_id_must_be_a_whole_number(sqlite_db: Db, tmp_path: Path) -> None:
    text = "ts,axis_id,value\n100.0,1,1.0\n100.0,1.5,2.0\n"
    with pytest.raises(IngestError, match=r"column 'axis_id', CSV line 3: '1.5' is not an axis id"):
        ingest_csv(sqlite_db.engine, sqlite_db.target, _csv(tmp_path, text), "t", layout="long")
    assert not table_exists(sqlite_db.engine, "t")
