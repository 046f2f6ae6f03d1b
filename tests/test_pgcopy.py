"""The PostgreSQL binary COPY reader: the parser on hand-made bytes, and windows read in parts
on the real server, equal to the generic (SQLAlchemy) path row for row."""

from __future__ import annotations

import datetime as dt
import struct
from contextlib import closing

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from conftest import Db

from Database import DatabaseError, DatabaseTarget, write_chunks
from DataExtractionAnalysis import DataConfig, ExtractionError, extract_window, pgcopy
from DataExtractionAnalysis.pgcopy import parse_copy, parse_packed_copy

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


def _packed(code: str, values: list) -> bytes:
    """A packed column field: its length, then each value's big-endian binary form."""
    body = b"".join(struct.pack(code, value) for value in values)
    return struct.pack(">i", len(body)) + body


def _keyed(key: bytes, *columns: bytes) -> bytes:
    return struct.pack(">h", 1 + len(columns)) + key + b"".join(columns)


@pytest.mark.parametrize(("width", "code"), [(2, ">h"), (4, ">i"), (8, ">q")])
def test_parse_packed_copy_gives_each_key_its_columns(width: int, code: str) -> None:
    key = struct.pack(">i", width)
    first = _keyed(
        key + struct.pack(code, -7),
        _packed(">q", [0, 1_000_000]),
        _packed(">d", [1.5, float("nan")]),
        _packed(">d", [-2.0, 3e300]),
    )
    second = _keyed(
        key + struct.pack(code, 2**15 - 1),
        _packed(">q", [5]),
        _packed(">d", [7.0]),
        _packed(">d", [8.0]),
    )

    got = parse_packed_copy(HEADER + first + second + TRAILER, 3)

    assert got is not None and [key for key, _ in got] == [-7, 2**15 - 1]
    (_, one), (_, two) = got
    assert one[0].dtype == np.int64 and one[1].dtype == np.float64
    assert one[0].tolist() == [946_684_800 * 10**9, 946_684_801 * 10**9]
    assert one[1].tolist() == [1.5, pytest.approx(float("nan"), nan_ok=True)]
    assert one[2].tolist() == [-2.0, 3e300]
    assert [column.tolist() for column in two] == [[946_684_800 * 10**9 + 5000], [7.0], [8.0]]
    assert parse_packed_copy(HEADER + TRAILER, 3) == []


KEY = struct.pack(">ii", 4, 1)


@pytest.mark.parametrize(
    "row",
    [
        _keyed(KEY, _packed(">q", [0, 1]), _packed(">d", [1.0])),  # columns of other lengths
        _keyed(KEY, _packed(">q", [0]), struct.pack(">i", -1)),  # a NULL column
        _keyed(struct.pack(">i", -1), _packed(">q", [0]), _packed(">d", [1.0])),  # a NULL key
        _keyed(KEY, _packed(">q", [0])),  # a field short
        _keyed(KEY, _packed(">q", [0]), _packed(">d", [1.0]), _packed(">d", [1.0])),  # one more
        _keyed(KEY, _packed(">q", [2**63 - 1]), _packed(">d", [1.0])),  # 'infinity'
        _keyed(KEY, _packed(">q", [0]), _packed(">d", [1.0]))[:-4],  # cut short
        _keyed(KEY, _packed(">q", [0]), struct.pack(">i", 4) + b"abcd"),  # not whole values
        _keyed(KEY, _packed(">q", [0]), struct.pack(">i", 16) + b"x" * 8),  # past the end
    ],
    ids=["lengths", "null-column", "null-key", "fields", "extra", "inf", "short", "width", "end"],
)
def test_parse_packed_copy_refuses_what_is_not_its_layout(row: bytes) -> None:
    assert parse_packed_copy(HEADER + row + TRAILER, 2) is None


def test_packed_columns_of_a_real_copy_line_up_with_its_rows(pg_db: Db) -> None:
    """PostgreSQL's own bytes: each column's values packed per key, in one order for all."""
    table = pg_db.table("packed")
    rng = np.random.default_rng(5)
    frame = pd.DataFrame(
        {
            "asset_id": np.repeat([3, 1, 2], 400).astype(np.int32),
            "ts": pd.Timestamp("2026-03-01", tz="UTC")
            + pd.to_timedelta(np.tile(np.arange(400), 3) * 2, unit="s"),
            "v": rng.normal(0, 1, 1200),
        }
    )
    types = {"asset_id": sa.Integer(), "ts": sa.DateTime(timezone=True), "v": sa.Float()}
    write_chunks(pg_db.engine, pg_db.target, table, types, [frame])
    sql = (
        f"SELECT asset_id, string_agg(timestamptz_send(ts), ''::bytea), "
        f"string_agg(float8send(v), ''::bytea) FROM (SELECT * FROM {table} "
        f"ORDER BY asset_id) AS rows_ GROUP BY asset_id"
    )
    import psycopg2

    with closing(psycopg2.connect(pg_db.target.libpq_uri)) as conn:
        got = pgcopy.copy_packed(conn, sql, 2)

    assert got is not None and sorted(key for key, _ in got) == [1, 2, 3]
    for key, (ticks, values) in got:
        mine = frame[frame["asset_id"] == key]
        pairs = sorted(zip(ticks.tolist(), values.tolist(), strict=True))
        assert pairs == sorted(
            zip(mine["ts"].dt.as_unit("ns").array.asi8.tolist(), mine["v"].tolist(), strict=True)
        )


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
        [_row(-10_200_000_000_000_000, 1.0, 2.0)],  # 1676: before datetime64[ns] begins
    ],
    ids=["null", "null-later", "infinity", "minus-infinity", "beyond-ns", "before-ns"],
)
def test_parse_copy_refuses_what_is_not_the_fixed_layout(rows: list[bytes]) -> None:
    assert parse_copy(HEADER + b"".join(rows) + TRAILER, 3) is None


def test_parse_copy_keeps_times_back_to_1677() -> None:
    micros = -9_000_000_000_000_000  # 1714-10-20 08:00 UTC
    got = parse_copy(HEADER + _row(micros, 1.0) + TRAILER, 2)
    assert got is not None
    assert got[0].view("datetime64[ns]")[0] == np.datetime64("1714-10-20T08:00:00")


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
    split = pgcopy._cuts
    monkeypatch.setattr(pgcopy, "SPLIT_ROWS", 1)  # any window is "large"
    monkeypatch.setattr(pgcopy, "_cuts", lambda *a: cuts.extend(split(*a)) or split(*a))

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
    split: list[object] = []
    monkeypatch.setattr(pgcopy, "_cuts", lambda *a: split.append(a))  # never called
    start, end = frame["ts"].iloc[0].to_pydatetime(), frame["ts"].iloc[-1].to_pydatetime()

    got = extract_window(pg_db.engine, pg_db.target, config, start=start, end=end)

    assert split == []  # 499 rows, far below SPLIT_ROWS
    assert got.source.reader == "copy" and len(got.frame) == 499


@pytest.mark.postgres
@pytest.mark.parametrize("time_type", ["timestamptz", "timestamp"])
def test_an_open_window_is_cut_between_its_first_and_last_time(
    pg_db: Db, monkeypatch: pytest.MonkeyPatch, time_type: str
) -> None:
    rows = 3601
    ts = pd.Timestamp("2026-02-01", tz="UTC") + pd.to_timedelta(np.arange(rows), unit="s")
    values = np.random.default_rng(8).normal(0, 1, rows)
    frame = pd.DataFrame({"ts": ts, "axis1": values, "axis2": -values})
    stored = frame.assign(ts=ts.tz_localize(None)) if time_type == "timestamp" else frame
    kind = sa.DateTime(timezone=time_type == "timestamptz")
    types = {"ts": kind, "axis1": sa.Float(53), "axis2": sa.Float(53)}
    write_chunks(pg_db.engine, pg_db.target, pg_db.table("open"), types, [stored])
    config = DataConfig(table=pg_db.table("open"), axes=["axis1", "axis2"])
    parts: list[tuple[dt.datetime | None, dt.datetime | None]] = []
    split = pgcopy._cuts
    monkeypatch.setattr(pgcopy, "SPLIT_ROWS", 1)
    monkeypatch.setattr(pgcopy, "_cuts", lambda *a: parts.extend(split(*a)) or split(*a))

    fast = extract_window(pg_db.engine, pg_db.target, config)  # no start, no end
    generic = extract_window(pg_db.engine, pg_db.target, config, fast_path=False)

    first = dt.datetime(2026, 2, 1, tzinfo=UTC)
    step = dt.timedelta(seconds=900)  # the 3600 s from the first to the last time, in 4
    assert parts == [
        (None, first + step),
        (first + step, first + 2 * step),
        (first + 2 * step, first + 3 * step),
        (first + 3 * step, None),
    ]
    assert fast.source.reader == "copy" and len(fast.frame) == rows
    pd.testing.assert_frame_equal(fast.frame, generic.frame, check_exact=True)


@pytest.mark.postgres
def test_the_parts_of_a_window_are_read_in_one_snapshot(
    pg_db: Db, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A row committed after the window's snapshot was taken is in no part: without the
    shared snapshot, the part that covers its time would read it."""
    frame, config = _parts_window(pg_db, 1000)
    start, end = frame["ts"].iloc[0].to_pydatetime(), frame["ts"].iloc[-1].to_pydatetime()
    split = pgcopy._cuts

    def cut_then_write(*args: object) -> object:
        with pg_db.engine.begin() as conn:  # another session, committed now
            conn.execute(
                sa.text(f"INSERT INTO {pg_db.schema}.parts (ts, axis1, axis2) VALUES (:t, 7, 7)"),
                {"t": start + dt.timedelta(seconds=500.5)},
            )
        return split(*args)

    monkeypatch.setattr(pgcopy, "SPLIT_ROWS", 1)
    monkeypatch.setattr(pgcopy, "_cuts", cut_then_write)

    got = extract_window(pg_db.engine, pg_db.target, config, start=start, end=end)

    assert got.source.reader == "copy"
    assert len(got.frame) == 999 and 7.0 not in got.frame["axis1"].to_numpy()
    later = extract_window(pg_db.engine, pg_db.target, config, start=start, end=end)
    assert len(later.frame) == 1000  # the row is there for the next read


@pytest.mark.postgres
def test_an_asset_with_a_percent_sign_is_read_as_written(pg_db: Db) -> None:
    ts = pd.Timestamp("2026-02-01", tz="UTC") + pd.to_timedelta(np.arange(20), unit="s")
    frame = pd.DataFrame(
        {
            "asset": ["line%1"] * 10 + ["line%%1"] * 10,
            "ts": np.r_[ts[:10], ts[:10]],
            "axis1": np.arange(20.0),
        }
    )
    types = {"asset": sa.Text(), "ts": sa.DateTime(timezone=True), "axis1": sa.Float(53)}
    write_chunks(pg_db.engine, pg_db.target, pg_db.table("fleet"), types, [frame])
    config = DataConfig(table=pg_db.table("fleet"), axes=["axis1"], asset_col="asset")

    got = extract_window(pg_db.engine, pg_db.target, config, asset="line%1")

    assert got.source.reader == "copy"
    assert got.frame["axis1"].tolist() == [float(k) for k in range(10)]


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


def test_a_failing_copy_is_a_database_error_without_the_password(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import psycopg2

    url = sa.make_url("postgresql://robot:p@ss w%rd@db.example:5432/plant")
    target = DatabaseTarget(url=url, embedded=False)

    def refuse(dsn: str, *args: object, **kwargs: object) -> None:
        # A driver message that repeats the connection string, password and all.
        raise psycopg2.OperationalError(f"could not connect with {dsn} (password p@ss w%rd)")

    monkeypatch.setattr(psycopg2, "connect", refuse)
    with pytest.raises(DatabaseError, match="through COPY failed") as caught:
        pgcopy.read_window(target, lambda a, b: "SELECT 1", lambda: "", ["ts", "a"], None, None)

    message = str(caught.value)
    assert "p@ss w%rd" not in message and "p%40ss%20w%25rd" not in message
    assert "***" in message and target.display in message


def _settings(conn: object) -> tuple[str, str]:
    with conn.cursor() as cursor:  # type: ignore[attr-defined]
        cursor.execute("SHOW jit")
        jit = cursor.fetchone()[0]
        cursor.execute("SHOW max_parallel_workers_per_gather")
        return jit, cursor.fetchone()[0]


@pytest.mark.postgres
def test_a_reading_session_has_no_jit_and_no_parallel_workers(
    pg_db: Db, monkeypatch: pytest.MonkeyPatch
) -> None:
    import psycopg2

    with closing(psycopg2.connect(pg_db.target.libpq_uri)) as conn:
        with conn.cursor() as cursor:  # whatever the server's defaults: the opposite first
            cursor.execute("SET jit = on; SET max_parallel_workers_per_gather = 2")
        conn.commit()
        assert _settings(conn) == ("on", "2")
        conn.rollback()
        # A setting this server does not know is skipped; the others still apply.
        monkeypatch.setattr(
            pgcopy, "BULK_READ_SETTINGS", (("no_such_setting", "1"), *pgcopy.BULK_READ_SETTINGS)
        )
        pgcopy.tune_session(conn)
        assert conn.autocommit and _settings(conn) == ("off", "0")


@pytest.mark.postgres
def test_every_connection_of_a_window_read_in_parts_is_tuned(
    pg_db: Db, monkeypatch: pytest.MonkeyPatch
) -> None:
    frame, config = _parts_window(pg_db, 2000)
    seen: list[tuple[str, str]] = []
    tune = pgcopy.tune_session
    monkeypatch.setattr(pgcopy, "SPLIT_ROWS", 1)
    monkeypatch.setattr(
        pgcopy, "tune_session", lambda conn: tune(conn) or seen.append(_settings(conn))
    )
    start, end = frame["ts"].iloc[0].to_pydatetime(), frame["ts"].iloc[-1].to_pydatetime()

    got = extract_window(pg_db.engine, pg_db.target, config, start=start, end=end)

    assert got.source.reader == "copy" and len(got.frame) == 1999
    # The planning connection, then one per part.
    assert seen == [("off", "0")] * (1 + pgcopy.PARTS)
