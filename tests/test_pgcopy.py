"""The PostgreSQL binary COPY reader: the parser on hand-made bytes, and windows read in parts
on the real server, equal to the generic (SQLAlchemy) path row for row."""

from __future__ import annotations

import datetime as dt
import struct

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from conftest import Db

from Database import DatabaseError, DatabaseTarget, write_chunks
from DataExtractionAnalysis import DataConfig, ExtractionError, extract_window, pgcopy
from DataExtractionAnalysis.pgcopy import parse_copy

UTC = dt.timezone.utc
HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
TRAILER = struct.pack(">h", -1)
PG_EPOCH = dt.datetime(2000, 1, 1, tzinfo=UTC)


def _row(micros: int, *values: float | None) -> bytes:
    fields = [struct.pack(">iq", 8, micros)]
    for value in values:
        fields.append(struct.pack(">i", -1) if value is None else struct.pack(">id", 8, value))
    return struct.pack(">h", 1 + len(values)) + b"".join(fields)


def test_parse_copy_gives_epoch_nanoseconds_and_the_values() -> None:
    t1 = dt.datetime(2026, 1, 5, 0, 0, 2, 250000, tzinfo=UTC)
    micros = [0, (t1 - PG_EPOCH) // dt.timedelta(microseconds=1)]
    data = HEADER + _row(micros[0], 1.5, -2.0) + _row(micros[1], float("nan"), 3e300) + TRAILER

    got = parse_copy(data, 3)

    assert got is not None
    assert got[0].tolist() == [946_684_800 * 10**9, int(t1.timestamp() * 10**6) * 1000]
    assert got[1].tolist() == [1.5, pytest.approx(float("nan"), nan_ok=True)]
    assert got[2].tolist() == [-2.0, 3e300]


def test_parse_copy_skips_a_header_extension_and_reads_no_rows() -> None:
    header = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 3) + b"abc"
    got = parse_copy(header + TRAILER, 2)
    assert got is not None and [column.size for column in got] == [0, 0]
    one = parse_copy(header + _row(5, 7.0) + TRAILER, 2)
    assert one is not None and one[1].tolist() == [7.0]


@pytest.mark.parametrize(
    "rows",
    [
        [_row(0, 1.0, None)],  # a NULL: the row is narrower
        [_row(0, 1.0, 2.0), _row(1, None, 2.0)],  # in the second row only
        [_row(2**63 - 1, 1.0, 2.0)],  # 'infinity'
        [_row(-(2**63), 1.0, 2.0)],  # '-infinity'
        [_row(9_300_000_000_000_000, 1.0, 2.0)],  # year ~2294: beyond datetime64[ns]
    ],
    ids=["null", "null-later", "infinity", "minus-infinity", "beyond-ns"],
)
def test_parse_copy_refuses_what_is_not_the_fixed_layout(rows: list[bytes]) -> None:
    assert parse_copy(HEADER + b"".join(rows) + TRAILER, 3) is None


def test_parse_copy_refuses_a_field_count_that_is_not_the_columns() -> None:
    # Same width per row as 3 columns would have, but announcing 2 fields.
    row = _row(0, 1.0, 2.0)
    assert parse_copy(HEADER + struct.pack(">h", 2) + row[2:] + TRAILER, 3) is None


def test_parse_copy_raises_on_bytes_that_are_no_copy() -> None:
    with pytest.raises(ValueError, match="not a PostgreSQL binary COPY"):
        parse_copy(b"COPY\n" + b"\0" * 40, 3)


def _parts_window(db: Db, rows: int) -> tuple[pd.DataFrame, DataConfig]:
    """``rows`` samples 1 s apart, some NaN and NULL, with 10 rows on the first cut."""
    rng = np.random.default_rng(3)
    ts = pd.Timestamp("2026-02-01", tz="UTC") + pd.to_timedelta(np.arange(rows), unit="s")
    frame = pd.DataFrame(
        {"ts": ts, "axis1": rng.normal(0, 1, rows), "axis2": rng.normal(5, 2, rows)}
    )
    frame.loc[rng.choice(rows, 40, replace=False), "axis2"] = np.nan  # stored as NULL
    types = {"ts": sa.DateTime(timezone=True), "axis1": sa.Float(53), "axis2": sa.Float(53)}
    write_chunks(db.engine, db.target, db.table("parts"), types, [frame])
    return frame, DataConfig(table=db.table("parts"), axes=["axis1", "axis2"])


@pytest.mark.postgres
def test_a_window_read_in_parts_equals_the_generic_read(
    pg_db: Db, monkeypatch: pytest.MonkeyPatch
) -> None:
    frame, config = _parts_window(pg_db, 4000)
    start = frame["ts"].iloc[100].to_pydatetime()
    end = frame["ts"].iloc[3700].to_pydatetime()  # 3600 s: cuts every 900 s
    cuts: list[tuple[dt.datetime | None, dt.datetime | None]] = []
    split = pgcopy._parts
    monkeypatch.setattr(pgcopy, "SPLIT_ROWS", 1)  # any window is "large"
    monkeypatch.setattr(pgcopy, "_parts", lambda *a: cuts.extend(split(*a)) or split(*a))

    fast = extract_window(pg_db.engine, pg_db.target, config, start=start, end=end)
    generic = extract_window(
        pg_db.engine, pg_db.target, config, start=start, end=end, fast_path=False
    )

    assert fast.source.reader == "copy"
    assert [b - a for a, b in cuts] == [dt.timedelta(seconds=900)] * 4
    assert len(fast.frame) == 3600  # the samples on the cuts are read once
    pd.testing.assert_frame_equal(fast.frame, generic.frame, check_exact=True)
    assert fast.frame["axis2"].isna().sum() == frame["axis2"].iloc[100:3700].isna().sum()


@pytest.mark.postgres
def test_a_small_window_is_one_query(pg_db: Db, monkeypatch: pytest.MonkeyPatch) -> None:
    frame, config = _parts_window(pg_db, 500)
    seen: list[int] = []
    split = pgcopy._parts
    monkeypatch.setattr(pgcopy, "_parts", lambda *a: seen.append(len(split(*a))) or split(*a))
    start, end = frame["ts"].iloc[0].to_pydatetime(), frame["ts"].iloc[-1].to_pydatetime()

    got = extract_window(pg_db.engine, pg_db.target, config, start=start, end=end)

    assert seen == [1]  # 499 rows, far below SPLIT_ROWS
    assert got.source.reader == "copy" and len(got.frame) == 499


@pytest.mark.postgres
def test_an_infinite_time_is_refused_as_on_the_general_reader(pg_db: Db) -> None:
    """'infinity' does not fit the parser's range: the window goes to the general reader,
    which names the column (unchecked, the parser's arithmetic would wrap around)."""
    _, config = _parts_window(pg_db, 50)
    with pg_db.engine.begin() as conn:
        conn.execute(
            sa.text(
                f"INSERT INTO {pg_db.schema}.parts (ts, axis1, axis2) VALUES ('infinity', 1, 2)"
            )
        )
    start = dt.datetime(2026, 2, 1, 0, 0, 40, tzinfo=UTC)  # no end: 'infinity' is in it
    end = dt.datetime(2026, 2, 2, tzinfo=UTC)

    with pytest.raises(ExtractionError, match=r"'ts' of table .*timestamps cannot be parsed"):
        extract_window(pg_db.engine, pg_db.target, config, start=start)
    got = extract_window(pg_db.engine, pg_db.target, config, start=start, end=end)
    assert got.source.reader == "copy" and len(got.frame) == 10


@pytest.mark.postgres
def test_a_failing_copy_is_a_database_error_without_the_password(pg_db: Db) -> None:
    # Nothing listens on port 1: connecting fails, and libpq's message repeats the host.
    url = pg_db.target.url.set(password="s3cret-pw", port=1)
    target = DatabaseTarget(url=url, embedded=False)

    with pytest.raises(DatabaseError, match="through COPY failed") as caught:
        pgcopy.read_window(target, lambda a, b: "SELECT 1", ["ts", "axis1"], None, None)

    assert "s3cret-pw" not in str(caught.value)
    assert target.display in str(caught.value)
