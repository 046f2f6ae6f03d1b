"""A fleet task reads its assets' windows several at a time; each window equals its own read.

``expect_windows`` announces a task's windows; ``extract_window`` then reads them a group at a
time (one query, split by asset in the client) and hands each asset exactly the frame its own
query gives: same rows, values, types and order, on SQLite and on PostgreSQL through both
readers, whether the rows are stored asset by asset or interleaved, with shared or per-asset
bounds, and for an asset without rows in its window. ``newest_times`` gives what
``newest_time`` gives, one statement for the batch.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from conftest import Db
from fleet_helpers import T0, asset_frame, write_fleet

from Database import write_chunks
from DataExtractionAnalysis import (
    DataConfig,
    EmptyWindowError,
    expect_windows,
    extract_window,
    extractor,
    newest_time,
    newest_times,
    reusing_connections,
)

ASSETS = [11, 12, 13, 14, 15, 16]


def _fleet(db: Db, *, interleaved: bool, text_ids: bool = False) -> list[object]:
    """Six assets of 40-90 samples with NaNs; stored asset by asset, or interleaved in time."""
    ids: list[object] = [f"robot/{a}" for a in ASSETS] if text_ids else list(ASSETS)
    frames = []
    for number, asset in enumerate(ids):
        frame = asset_frame(asset, 40 + 10 * number, seed=number)
        frame.loc[frame.index % 7 == 3, "a"] = np.nan
        frames.append(frame)
    if interleaved:
        frames = [pd.concat(frames).sort_values(["ts", "asset"], kind="stable")]
    write_fleet(db, frames)
    return ids


def _data(db: Db) -> DataConfig:
    return DataConfig(table=db.table("fleet"), axes=["a", "b"], asset_col="asset")


def _windows(ids: list[object], shared: bool) -> list[tuple[object, dt.datetime, dt.datetime]]:
    """Shared bounds, or each asset its own (the fourth one's holds no row)."""
    windows = []
    for number, asset in enumerate(ids):
        if shared:
            start, end = T0 + pd.Timedelta(seconds=5), T0 + pd.Timedelta(seconds=70)
        else:
            start = T0 + pd.Timedelta(seconds=number)
            end = start + pd.Timedelta(seconds=30 + 5 * number)
            if number == 3:
                start = end = T0 + pd.Timedelta(days=3)
                end += pd.Timedelta(seconds=10)
        windows.append((asset, start.to_pydatetime(), end.to_pydatetime()))
    return windows


def _read_each(db: Db, data: DataConfig, windows, fast_path: bool) -> list[object]:
    """Each window read on its own (a frame, or the EmptyWindowError's message)."""
    found: list[object] = []
    for asset, start, end in windows:
        try:
            found.append(
                extract_window(
                    db.engine,
                    db.target,
                    data,
                    start=start,
                    end=end,
                    asset=asset,
                    fast_path=fast_path,
                ).frame
            )
        except EmptyWindowError as exc:
            found.append(str(exc))
    return found


@pytest.mark.parametrize("interleaved", [False, True])
@pytest.mark.parametrize("shared", [True, False])
@pytest.mark.parametrize("fast_path", [True, False])
def test_windows_read_ahead_equal_their_own_reads(any_db, interleaved, shared, fast_path):
    ids = _fleet(any_db, interleaved=interleaved)
    data = _data(any_db)
    windows = _windows(ids, shared)
    alone = _read_each(any_db, data, windows, fast_path)
    with reusing_connections():
        expect_windows(any_db.engine, data, windows)
        together = _read_each(any_db, data, windows[:2], fast_path)
        cache = extractor._REUSE.get()
        # The first window was read alone, the second brought the other four along.
        assert len(cache.windows) == len(windows) - 2
        together += _read_each(any_db, data, windows[2:], fast_path)
        assert not cache.windows
    assert len(together) == len(alone) == len(ids)
    for ours, theirs in zip(together, alone, strict=True):
        if isinstance(theirs, str):
            assert ours == theirs
            assert "no rows" in theirs
        else:
            pd.testing.assert_frame_equal(ours, theirs)
            assert len(theirs) > 20


@pytest.mark.postgres
@pytest.mark.parametrize("fast_path", [True, False])
def test_text_ids_read_ahead_on_postgresql(pg_db, fast_path):
    ids = _fleet(pg_db, interleaved=True, text_ids=True)
    data = _data(pg_db)
    windows = _windows(ids, shared=False)
    alone = _read_each(pg_db, data, windows, fast_path)
    with reusing_connections():
        expect_windows(pg_db.engine, data, windows)
        together = _read_each(pg_db, data, windows, fast_path)
    for ours, theirs in zip(together, alone, strict=True):
        if isinstance(theirs, str):
            assert ours == theirs
        else:
            pd.testing.assert_frame_equal(ours, theirs)


@pytest.mark.postgres
@pytest.mark.parametrize(
    ("asset_type", "timezone"),
    [
        (sa.SmallInteger(), True),
        (sa.Integer(), True),
        (sa.BigInteger(), True),
        (sa.Integer(), False),
    ],
    ids=["smallint", "integer", "bigint", "integer-timestamp-without-zone"],
)
def test_integer_ids_read_ahead_by_copy_on_postgresql(pg_db, asset_type, timezone):
    frames = []
    for number, asset in enumerate(ASSETS):
        frame = asset_frame(asset, 40 + 10 * number, seed=number)
        frame.loc[frame.index % 5 == 2, "b"] = np.nan  # NULL: sent as NaN, the layout holds
        frames.append(frame)
    frames = [pd.concat(frames).sort_values(["ts", "asset"], kind="stable")]
    columns = {
        "ts": sa.DateTime(timezone=timezone),
        "asset": asset_type,
        "a": sa.Float(53),
        "b": sa.Float(53),
    }
    write_chunks(pg_db.engine, pg_db.target, pg_db.table("fleet"), columns, frames)
    data = _data(pg_db)
    windows = _windows(list(ASSETS), shared=False)
    alone = _read_each(pg_db, data, windows, fast_path=True)
    readers = []
    with reusing_connections():
        expect_windows(pg_db.engine, data, windows)
        together = []
        for asset, start, end in windows:
            try:
                extraction = extract_window(
                    pg_db.engine, pg_db.target, data, start=start, end=end, asset=asset
                )
            except EmptyWindowError as exc:
                together.append(str(exc))
                continue
            together.append(extraction.frame)
            readers.append(extraction.source.reader)
    # The first window alone, the others ahead, all by COPY on the block's connection.
    assert readers == ["copy"] * (len(ASSETS) - 1)
    for ours, theirs in zip(together, alone, strict=True):
        if isinstance(theirs, str):
            assert ours == theirs
        else:
            pd.testing.assert_frame_equal(ours, theirs)
            assert ours["b"].isna().any()


def test_a_window_asked_out_of_turn_is_read_on_its_own(sqlite_db):
    ids = _fleet(sqlite_db, interleaved=False)
    data = _data(sqlite_db)
    windows = _windows(ids, shared=True)
    alone = _read_each(sqlite_db, data, windows, fast_path=False)
    with reusing_connections():
        expect_windows(sqlite_db.engine, data, windows)
        # Assets 11 and 12 never read (they stopped early); 13 comes first, alone.
        together = _read_each(sqlite_db, data, windows[2:], fast_path=False)
        other = (ids[0], windows[0][1] - dt.timedelta(seconds=1), windows[0][2])
        extra = _read_each(sqlite_db, data, [other], fast_path=False)  # never announced
    for ours, theirs in zip(together, alone[2:], strict=True):
        pd.testing.assert_frame_equal(ours, theirs)
    assert len(extra[0]) == len(alone[0]) + 1


def test_rows_of_an_id_not_asked_for_drop_the_read_ahead():
    group = [extractor._Window((), asset, None, None) for asset in (1, 2)]
    assert extractor._asset_runs(np.array([1, 1, 3]), group) is None
    order, slices = extractor._asset_runs(np.array([2, 1, 2, 1]), group)
    np.testing.assert_array_equal(order, [1, 3, 0, 2])
    assert slices == {group[0]: slice(0, 2), group[1]: slice(2, 4)}
    order, slices = extractor._asset_runs(np.array([], dtype=int), group)
    assert order is None and slices == {group[0]: slice(0, 0), group[1]: slice(0, 0)}


def test_newest_times_equal_newest_time(any_db):
    ids = _fleet(any_db, interleaved=True)
    data = _data(any_db)
    asked = [*ids, 99]  # 99: no rows
    expected = [newest_time(any_db.engine, any_db.target, data, asset=a) for a in asked]
    with reusing_connections():
        newest_times(any_db.engine, any_db.target, data, asked)
        cached = extractor._REUSE.get().newest
        assert len(cached) == (0 if any_db.target.dialect == "sqlite" else len(asked))
        found = [newest_time(any_db.engine, any_db.target, data, asset=a) for a in asked]
    assert found == expected
    assert expected[-1] is None
    assert expected[0] == (T0 + pd.Timedelta(seconds=39)).to_pydatetime()


@pytest.mark.postgres
@pytest.mark.parametrize("text_ids", [False, True])
def test_assets_listed_through_an_index_equal_select_distinct(pg_db, text_ids):
    """With an index leading with the asset column, PostgreSQL lists the assets one index
    probe each (a recursive min): the same values, types and order as SELECT DISTINCT."""
    ids: list[object] = ["b", "B", "a/1", "10", "9", "é"] if text_ids else [30, -2, 7, 100, 8]
    write_fleet(pg_db, [asset_frame(asset, 5 + n, seed=n) for n, asset in enumerate(ids)])
    data = _data(pg_db)
    table = extractor._plan(pg_db.engine, pg_db.target, data).table
    with pg_db.engine.begin() as conn:  # a row without an asset is no asset
        conn.execute(table.insert().values(ts=T0.to_pydatetime(), asset=None, a=1.0, b=2.0))
    without_index = extractor.list_assets(pg_db.engine, pg_db.target, data)
    schema, name = data.table.split(".")
    with pg_db.engine.begin() as conn:
        assert not extractor._leads_an_index(conn, data, "asset")
        conn.exec_driver_sql(f'CREATE INDEX ON "{schema}"."{name}" (asset, ts)')
        assert extractor._leads_an_index(conn, data, "asset")
        distinct = (sa.select(table.c.asset).where(table.c.asset.is_not(None)).distinct()).order_by(
            table.c.asset
        )
        expected = list(conn.execute(distinct).scalars())
    listed = extractor.list_assets(pg_db.engine, pg_db.target, data)
    assert listed == without_index == expected
    assert sorted(map(str, listed)) == sorted(map(str, ids))
    assert {type(value) for value in listed} == {str if text_ids else int}


@pytest.mark.postgres
def test_kept_connections_serve_the_next_block_and_are_closed_by_close(pg_db):
    """A fleet worker's next task takes over the fast-path connection and column plan of its
    previous one (KeptConnections); the reads are those of a block of its own."""
    ids = _fleet(pg_db, interleaved=False)
    data = _data(pg_db)
    kept = extractor.KeptConnections()
    connections = []
    for asset in ids[:3]:
        with reusing_connections(kept):
            found = extract_window(pg_db.engine, pg_db.target, data, asset=asset).frame
        with reusing_connections():
            alone = extract_window(pg_db.engine, pg_db.target, data, asset=asset).frame
        pd.testing.assert_frame_equal(found, alone)
        connections.append(next(iter(kept.connections.values())))
        assert len(kept.connections) == 1 and len(kept.plans) == 1
    assert connections[0] is connections[1] is connections[2]
    with connections[0].cursor() as cursor:  # a COPY reader's session (pgcopy.tune_session)
        cursor.execute("SELECT current_setting('jit'), current_setting('transaction_read_only')")
        assert cursor.fetchone() == ("off", "on")
    kept.close()
    assert kept.connections == {} and kept.plans == {}
