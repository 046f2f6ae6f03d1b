"""Extraction on real SQLite and PostgreSQL: layouts, time column kinds, window, bad input."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from conftest import Db

from Database import (
    DatabaseConfig,
    DatabaseError,
    connect_engine,
    resolve_target,
    write_chunks,
)
from DataExtractionAnalysis import (
    DataConfig,
    EmptyWindowError,
    ExtractionError,
    extract_window,
    lookahead_end,
    lookback_start,
)

T0 = pd.Timestamp("2026-01-05 00:00:00", tz="UTC")
UTC = dt.timezone.utc
TIME_TYPES = {
    "timestamptz": sa.DateTime(timezone=True),
    "timestamp": sa.DateTime(),
    "epoch": sa.Float(precision=53),
}


def _epoch(ts: pd.Series) -> pd.Series:
    return (ts - pd.Timestamp(0, tz="UTC")) / pd.Timedelta(seconds=1)


def _samples(n: int = 6) -> pd.DataFrame:
    """n samples 2 s apart; axis1 = k, axis2 = 10 k + 0.5, with an idle zero and a NaN."""
    frame = pd.DataFrame(
        {
            "ts": T0 + pd.to_timedelta(np.arange(n) * 2.0, unit="s"),
            "axis1": np.arange(n, dtype="float64"),
            "axis2": np.arange(n, dtype="float64") * 10 + 0.5,
        }
    )
    frame.loc[2, "axis2"] = np.nan
    return frame


def _store(db: Db, name: str, frame: pd.DataFrame, time_kind: str, layout: str) -> None:
    stored = frame.copy()
    if time_kind == "epoch":
        stored["ts"] = _epoch(stored["ts"])
    elif time_kind == "timestamp":
        stored["ts"] = stored["ts"].dt.tz_localize(None)
    if layout == "long":
        stored = stored.melt(id_vars="ts", var_name="axis", value_name="value").dropna()
        stored["axis_id"] = stored.pop("axis").str.removeprefix("axis").astype(int)
        stored = stored[["ts", "axis_id", "value"]]
        types = {"ts": TIME_TYPES[time_kind], "axis_id": sa.Integer(), "value": sa.Float(53)}
    else:
        types = {"ts": TIME_TYPES[time_kind], "axis1": sa.Float(53), "axis2": sa.Float(53)}
    write_chunks(db.engine, db.target, db.table(name), types, [stored])


def _config(db: Db, name: str, layout: str, **extra: object) -> DataConfig:
    axes = [1, 2] if layout == "long" else ["axis1", "axis2"]
    return DataConfig(table=db.table(name), axes=axes, **extra)


def _expected(frame: pd.DataFrame, time_kind: str) -> pd.DataFrame:
    expected = frame.copy()
    if time_kind == "epoch":
        expected["ts"] = _epoch(expected["ts"])
    else:
        expected["ts"] = expected["ts"].astype("datetime64[ns, UTC]")
    return expected


@pytest.mark.parametrize("layout", ["wide", "long"])
@pytest.mark.parametrize("time_kind", ["timestamptz", "timestamp", "epoch"])
def test_every_path_returns_the_exact_window(any_db: Db, layout: str, time_kind: str) -> None:
    frame = _samples()
    _store(any_db, "samples", frame, time_kind, layout)
    start = (T0 + pd.Timedelta(seconds=2)).to_pydatetime()
    end = (T0 + pd.Timedelta(seconds=8)).to_pydatetime()  # exclusive: the sample at 8 s is out

    got = extract_window(
        any_db.engine, any_db.target, _config(any_db, "samples", layout), start=start, end=end
    )

    expected = _expected(frame, time_kind).iloc[1:4].reset_index(drop=True)
    pd.testing.assert_frame_equal(got.frame, expected)
    assert list(got.frame.dtypes[1:]) == [np.dtype("float64")] * 2
    assert got.source.layout == layout


def test_sqlite_iso_text_in_mixed_forms_is_compared_as_time(sqlite_db: Db) -> None:
    texts = [
        "2026-01-05T00:00:00Z",
        "2026-01-05 00:00:02+00:00",
        "2026-01-05 02:00:04+02:00",
        "2026-01-05 00:00:06.000",
    ]
    frame = pd.DataFrame({"ts": texts, "a": [1.0, 2.0, 3.0, 4.0]})
    write_chunks(
        sqlite_db.engine, sqlite_db.target, "iso", {"ts": sa.Text(), "a": sa.Float()}, [frame]
    )
    config = DataConfig(table="iso", axes=["a"])

    got = extract_window(
        sqlite_db.engine,
        sqlite_db.target,
        config,
        start=dt.datetime(2026, 1, 5, 0, 0, 2, tzinfo=UTC),
        end=dt.datetime(2026, 1, 5, 0, 0, 6, tzinfo=UTC),
    )

    assert got.source.time_kind == "iso_text"
    assert got.frame["a"].tolist() == [2.0, 3.0]  # "02:00:04+02:00" is 00:00:04 UTC
    assert got.frame["ts"].iloc[1] == T0 + pd.Timedelta(seconds=4)


@pytest.mark.postgres
@pytest.mark.parametrize("layout", ["wide", "long"])
@pytest.mark.parametrize("time_kind", ["timestamptz", "timestamp", "epoch"])
def test_fast_path_equals_generic_path(pg_db: Db, layout: str, time_kind: str) -> None:
    rng = np.random.default_rng(7)
    n = 5000
    frame = pd.DataFrame(
        {
            "ts": T0 + pd.to_timedelta(np.cumsum(rng.integers(1800, 2000, n)), unit="ms"),
            "axis1": rng.normal(5, 1, n),
            "axis2": rng.normal(-3, 2, n),
        }
    )
    frame.loc[rng.choice(n, 50, replace=False), "axis1"] = 0.0
    frame.loc[rng.choice(n, 30, replace=False), "axis2"] = np.nan
    _store(pg_db, "samples", frame, time_kind, layout)
    config = _config(pg_db, "samples", layout)
    window = {
        "start": frame["ts"].iloc[100].to_pydatetime(),
        "end": frame["ts"].iloc[4000].to_pydatetime(),
    }

    fast = extract_window(pg_db.engine, pg_db.target, config, fast_path=True, **window)
    generic = extract_window(pg_db.engine, pg_db.target, config, fast_path=False, **window)

    # Fixed-width rows (timestamp + DOUBLE PRECISION, WIDE) go through the COPY parser.
    expected_reader = "copy" if layout == "wide" and time_kind != "epoch" else "adbc"
    assert (fast.source.reader, generic.source.reader) == (expected_reader, "sqlalchemy")
    assert len(fast.frame) == 3900
    pd.testing.assert_frame_equal(fast.frame, generic.frame, check_exact=True)


@pytest.mark.postgres
def test_fast_path_turns_null_integers_and_reals_into_nan(pg_db: Db) -> None:
    n = 3000
    frame = pd.DataFrame(
        {
            "ts": T0 + pd.to_timedelta(np.arange(n) * 2.0, unit="s"),
            "axis1": pd.array(np.arange(n) % 7, dtype="Int64"),  # INTEGER with NULLs
            "axis2": np.arange(n, dtype="float32") / 4,  # REAL with NULLs
        }
    )
    frame.loc[[0, 9, 10, 2999], "axis1"] = pd.NA
    frame.loc[[5, 1500], "axis2"] = np.nan
    types = {"ts": TIME_TYPES["timestamptz"], "axis1": sa.Integer(), "axis2": sa.REAL()}
    write_chunks(pg_db.engine, pg_db.target, pg_db.table("typed"), types, [frame])
    config = _config(pg_db, "typed", "wide")

    fast = extract_window(pg_db.engine, pg_db.target, config, fast_path=True)
    generic = extract_window(pg_db.engine, pg_db.target, config, fast_path=False)

    pd.testing.assert_frame_equal(fast.frame, generic.frame, check_exact=True)
    got = fast.frame
    assert got["axis1"].dtype == got["axis2"].dtype == np.float64
    assert np.flatnonzero(got["axis1"].isna()).tolist() == [0, 9, 10, 2999]
    assert np.flatnonzero(got["axis2"].isna()).tolist() == [5, 1500]
    assert got["axis1"].iloc[[1, 8, 2998]].tolist() == [1.0, 1.0, 2998 % 7]
    assert got["axis2"].iloc[[4, 6]].tolist() == [1.0, 1.5]


def test_arrow_numbers_with_nulls_become_nan_across_chunks_and_offsets() -> None:
    import pyarrow as pa

    from DataExtractionAnalysis.extractor import _arrow_column

    sliced = pa.array([9.0, 1.0, None, 3.0, None, 5.0, 6.0, 7.0, None, 9.0, 10.0]).slice(1, 9)
    column = pa.chunked_array(
        [
            sliced,  # offset 1 into its buffers: [1, None, 3, None, 5, 6, 7, None, 9]
            pa.array([None, None], type=pa.float64()),  # every value NULL
            pa.array([11.0, 12.0]),  # no NULL
        ]
    )
    got = _arrow_column(column).to_numpy()
    expected = [1, np.nan, 3, np.nan, 5, 6, 7, np.nan, 9, np.nan, np.nan, 11, 12]
    np.testing.assert_array_equal(got, np.array(expected, dtype=float))
    integers = _arrow_column(pa.chunked_array([pa.array([4, None, -2], type=pa.int32())]))
    np.testing.assert_array_equal(integers.to_numpy(), [4.0, np.nan, -2.0])
    singles = _arrow_column(pa.chunked_array([pa.array([0.25, None], type=pa.float32())]))
    np.testing.assert_array_equal(singles.to_numpy(), [0.25, np.nan])
    assert singles.dtype == np.float64


def test_table_name_injection_is_refused_and_executes_nothing(sqlite_db: Db) -> None:
    _store(sqlite_db, "x", _samples(), "timestamp", "wide")
    with pytest.raises(ValueError, match="not a safe SQL identifier"):
        DataConfig(table="stream_samples; DROP TABLE x")
    assert sa.inspect(sqlite_db.engine).has_table("x")


def test_missing_axis_column_lists_available_columns(any_db: Db) -> None:
    _store(any_db, "samples", _samples(), "timestamptz", "wide")
    config = DataConfig(table=any_db.table("samples"), axes=["axis1", "axis9"])
    with pytest.raises(
        ExtractionError,
        match=r"'axis9' \(data.axes\) not found .*available "
        r"columns: ts, axis1, axis2",
    ):
        extract_window(any_db.engine, any_db.target, config)


def test_missing_table_lists_tables(sqlite_db: Db) -> None:
    _store(sqlite_db, "samples", _samples(), "timestamp", "wide")
    with pytest.raises(ExtractionError, match=r"'nope' .* not found .*available tables: samples"):
        extract_window(sqlite_db.engine, sqlite_db.target, DataConfig(table="nope"))


def test_non_numeric_axis_values_are_named(any_db: Db) -> None:
    frame = pd.DataFrame({"ts": _samples()["ts"], "a": ["1.5", "2", "oops", None, "3", "4"]})
    write_chunks(
        any_db.engine,
        any_db.target,
        any_db.table("txt"),
        {"ts": sa.DateTime(timezone=True), "a": sa.Text()},
        [frame],
    )
    config = DataConfig(table=any_db.table("txt"), axes=["a"])
    with pytest.raises(
        ExtractionError,
        match=r"column 'a' .* non-numeric values \(1 rows, "
        r"e.g. 'oops'\)",
    ):
        extract_window(any_db.engine, any_db.target, config, fast_path=True)


def test_empty_window_reports_the_tables_range(any_db: Db) -> None:
    _store(any_db, "samples", _samples(), "timestamptz", "wide")
    config = _config(any_db, "samples", "wide")
    with pytest.raises(EmptyWindowError, match=r"no rows .* the table holds 6 rows from "):
        extract_window(
            any_db.engine, any_db.target, config, start=dt.datetime(2030, 1, 1, tzinfo=UTC)
        )


def _duplicated() -> pd.DataFrame:
    frame = _samples(4)
    extra = frame.iloc[[1]].assign(axis1=100.0, axis2=200.0)
    return pd.concat([frame, extra], ignore_index=True)


@pytest.mark.parametrize(
    ("rule", "axis1_at_2s"),
    [("first", 1.0), ("last", 100.0), ("mean", 50.5)],
)
def test_duplicate_timestamp_rules(sqlite_db: Db, rule: str, axis1_at_2s: float) -> None:
    _store(sqlite_db, "dup", _duplicated(), "timestamptz", "wide")
    got = extract_window(
        sqlite_db.engine, sqlite_db.target, _config(sqlite_db, "dup", "wide", duplicates=rule)
    )
    assert got.duplicates_resolved == 1
    assert got.frame["axis1"].tolist() == [0.0, axis1_at_2s, 2.0, 3.0]
    assert got.frame["ts"].is_monotonic_increasing


def test_duplicate_timestamps_are_refused_by_default(any_db: Db) -> None:
    _store(any_db, "dup", _duplicated(), "timestamptz", "long")
    with pytest.raises(
        ExtractionError, match=r"2 rows repeat the timestamp and axis id .* data.duplicates"
    ):
        extract_window(any_db.engine, any_db.target, _config(any_db, "dup", "long"))


def test_long_axis_id_without_rows_is_named(sqlite_db: Db) -> None:
    _store(sqlite_db, "long", _samples(), "timestamptz", "long")
    config = DataConfig(table="long", axes=[1, 2, 3])
    with pytest.raises(ExtractionError, match=r"axis ids \[3\] .* ids present: \[1, 2\]"):
        extract_window(sqlite_db.engine, sqlite_db.target, config)


def test_lookback_start_finds_the_nth_sample_before(any_db: Db) -> None:
    _store(any_db, "samples", _samples(), "timestamptz", "wide")
    config = _config(any_db, "samples", "wide")
    before = (T0 + pd.Timedelta(seconds=8)).to_pydatetime()
    assert (
        lookback_start(any_db.engine, any_db.target, config, before, 3)
        == (T0 + pd.Timedelta(seconds=2)).to_pydatetime()
    )
    assert lookback_start(any_db.engine, any_db.target, config, T0.to_pydatetime(), 3) is None
    assert (
        lookahead_end(any_db.engine, any_db.target, config, before, 2)
        == (T0 + pd.Timedelta(seconds=10)).to_pydatetime()
    )
    assert lookahead_end(any_db.engine, any_db.target, config, before, 3) is None


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("postgresql://postgres:s3cr3t-pw@127.0.0.1:1/test", "Connection refused"),
        ("postgresql://postgres:s3cr3t-pw@127.0.0.1:5432/no_such_db_xyz", "does not exist"),
        ("postgresql://no_such_user:s3cr3t-pw@127.0.0.1:5432/test", "does not exist"),
    ],
)
@pytest.mark.postgres
def test_unreachable_database_message_has_reason_but_no_password(
    pg_target: object, url: str, reason: str
) -> None:
    target = resolve_target(DatabaseConfig(), __import__("pathlib").Path("."), {"DB_URL": url})
    with pytest.raises(
        DatabaseError, match=rf"^connecting to the database \(.*\*\*\*.*\) failed: .*{reason}"
    ) as caught:
        connect_engine(target, DatabaseConfig(connect_timeout_s=3))
    message = str(caught.value)
    assert reason in message
    assert "s3cr3t-pw" not in message
    assert "postgres" in message and "***" in message


def test_malformed_port_in_the_url_is_a_database_error_without_password() -> None:
    with pytest.raises(
        DatabaseError,
        match=r"^environment variable DB_URL does not hold a database URL; expected e\.g\. "
        r"postgresql://user:password@host:5432/dbname$",
    ) as caught:
        resolve_target(
            DatabaseConfig(),
            __import__("pathlib").Path("."),
            {"DB_URL": "postgresql://robot:pw-77-secret@db:abc/plant"},
        )
    assert "does not hold a database URL" in str(caught.value)
    assert "pw-77-secret" not in str(caught.value)
