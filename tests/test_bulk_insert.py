"""Bulk inserts on SQLite: the positional executemany stores what SQLAlchemy's own path stores."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy as sa

from Database import tables
from Database.tables import define_table, insert_chunks

COLUMNS = {
    "ts": sa.DateTime(timezone=True),
    "robot": sa.String(32),
    "cycle": sa.BigInteger(),
    "value": sa.Float(precision=53),
    "local": sa.DateTime(timezone=True),
    "old": sa.DateTime(),
    "far": sa.DateTime(),
    "flag": sa.Boolean(),
}


def _frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "ts": pd.to_datetime(
                ["2026-01-05 00:00:00", "2026-01-05 00:00:01.891", None, "2026-01-05 00:00:03"],
                format="ISO8601",
                utc=True,
            ),
            "robot": ["r1", None, "r-ü", "r2"],
            "cycle": pd.array([1, None, 3, 2**40], dtype="Int64"),
            "value": [1.5, np.nan, -0.0, 1e308],
            # Stored as its own clock reads (SQLAlchemy's SQLite DATETIME drops the zone).
            "local": pd.to_datetime(
                ["2026-03-29 01:59:59.5", None, None, "2026-03-29 03:00"], format="ISO8601"
            )
            .tz_localize("UTC")
            .tz_convert("Europe/Berlin"),
            # Before 1970 with a sub-microsecond part: formatted by the processor, value by value.
            "old": pd.to_datetime(
                ["1969-12-31 23:59:59.9999995", "1900-01-01", None, "2026-01-01 00:00:00.000001"],
                format="ISO8601",
            ),
            # Microseconds (as pandas 3 parses ISO text): years beyond the nanosecond range.
            "far": pd.Series(
                ["2026-01-01", "2800-01-01", "1500-06-01 12:00:00.5", "2026-01-02"],
                dtype="datetime64[us]",
            ),
            "flag": pd.array([True, None, False, True], dtype="boolean"),
        }
    )


def _stored(path: Path, positional: bool, monkeypatch) -> list[tuple]:
    if not positional:
        monkeypatch.setattr(tables, "_insert_positional", lambda *args: False)
    engine = sa.create_engine(f"sqlite:///{path}")
    table = define_table("samples", COLUMNS)
    with engine.begin() as conn:
        table.create(conn)
        result = insert_chunks(conn, table, [_frame(), _frame().iloc[:0], _frame().iloc[1:2]])
    assert (result.rows, result.skipped) == (5, 0)
    with engine.connect() as conn:
        rows = conn.exec_driver_sql(
            "SELECT ts, typeof(ts), robot, cycle, typeof(cycle), value, typeof(value), local, old, "
            "far, flag "
            "FROM samples ORDER BY rowid"
        ).all()
    engine.dispose()
    monkeypatch.undo()
    return [tuple(row) for row in rows]


def test_the_positional_insert_stores_what_sqlalchemy_stores(tmp_path: Path, monkeypatch) -> None:
    fast = _stored(tmp_path / "fast.sqlite", True, monkeypatch)
    reference = _stored(tmp_path / "reference.sqlite", False, monkeypatch)

    assert fast == reference
    assert fast[0][:7] == ("2026-01-05 00:00:00.000000", "text", "r1", 1, "integer", 1.5, "real")
    assert fast[1][:5] == ("2026-01-05 00:00:01.891000", "text", None, None, "null")
    assert fast[1][5:7] == (None, "null")  # NaN is stored as NULL
    assert fast[2][:2] == (None, "null") and fast[2][2] == "r-ü"
    assert fast[3][3:6] == (2**40, "integer", 1e308)
    assert fast[4] == fast[1]
    assert [row[7] for row in fast[:4]] == [
        "2026-03-29 03:59:59.500000",
        None,
        None,
        "2026-03-29 05:00:00.000000",
    ]
    assert [row[8] for row in fast[:4]] == [
        "1969-12-31 23:59:59.999999",
        "1900-01-01 00:00:00.000000",
        None,
        "2026-01-01 00:00:00.000001",
    ]
    assert [row[9] for row in fast[:4]] == [
        "2026-01-01 00:00:00.000000",
        "2800-01-01 00:00:00.000000",
        "1500-06-01 12:00:00.500000",
        "2026-01-02 00:00:00.000000",
    ]
    assert [row[10] for row in fast[:4]] == [1, None, 0, 1]


def test_drivers_with_named_parameters_keep_sqlalchemys_path(tmp_path: Path) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'named.sqlite'}", paramstyle="named")
    table = define_table("samples", COLUMNS)
    with engine.begin() as conn:
        table.create(conn)
        assert tables._insert_positional(conn, table, _frame()) is False
        assert insert_chunks(conn, table, [_frame()]).rows == 4
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM samples").scalar() == 4
    engine.dispose()


def test_datetime_columns_are_formatted_at_once_where_numpy_writes_the_processors_text() -> None:
    engine = sa.create_engine("sqlite://")
    process = sa.DateTime().dialect_impl(engine.dialect).bind_processor(engine.dialect)
    frame = _frame()

    assert tables._datetime_texts(frame["ts"], process) == [
        "2026-01-05 00:00:00.000000",
        "2026-01-05 00:00:01.891000",
        None,
        "2026-01-05 00:00:03.000000",
    ]
    assert tables._datetime_texts(frame["local"], process)[0] == "2026-03-29 03:59:59.500000"
    assert tables._datetime_texts(frame["old"], process) is None  # pre-1970, sub-microsecond
    assert tables._datetime_texts(frame["value"], process) is None  # not a time
    assert tables._datetime_texts(frame["ts"], lambda value: "other") is None  # checked
    assert tables._datetime_texts(frame["far"], process)[1] == "2800-01-01 00:00:00.000000"


def test_object_columns_keep_sqlalchemys_path(tmp_path: Path) -> None:
    # Their cells may be NumPy scalars, which the driver cannot bind; SQLAlchemy's path unboxes.
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'objects.sqlite'}")
    table = define_table("samples", {"cycle": sa.BigInteger(), "value": sa.Float(precision=53)})
    frame = pd.DataFrame(
        {"cycle": pd.Series([np.int64(7), None], dtype=object), "value": [0.5, 1.5]}
    )
    with engine.begin() as conn:
        table.create(conn)
        assert tables._insert_positional(conn, table, frame) is False
        assert insert_chunks(conn, table, [frame]).rows == 2
    with engine.connect() as conn:
        rows = conn.exec_driver_sql("SELECT cycle, value FROM samples ORDER BY rowid").all()
    assert [tuple(row) for row in rows] == [(7, 0.5), (None, 1.5)]
    engine.dispose()
