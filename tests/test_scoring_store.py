"""The event store on real databases: the table it creates, and windows stitched into events."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from conftest import Db
from test_scoring_core import random_boundaries, random_frame, score_window

from Scoring import EventStore, lookback_samples, score_frame

EVENT_KEY = ["asset", "source_table", "axis", "severity", "start_ts", "model_version"]


def test_the_tables_are_created_with_their_unique_keys_and_start_index(any_db: Db) -> None:
    store = EventStore(any_db.engine, any_db.target, any_db.table("events"), any_db.table("s"))
    with store.session("v1", "run"):
        pass
    inspector = sa.inspect(any_db.engine)

    uniques = inspector.get_unique_constraints("events", schema=any_db.schema)
    assert [u["column_names"] for u in uniques] == [EVENT_KEY]
    indexes = [
        (index["column_names"], bool(index["unique"]))
        for index in inspector.get_indexes("events", schema=any_db.schema)
        if "duplicates_constraint" not in index  # PostgreSQL lists the unique key's index too
    ]
    assert indexes == [(["start_ts"], False)]
    state_key = inspector.get_pk_constraint("events_state", schema=any_db.schema)
    assert state_key["constrained_columns"] == ["source_table", "asset"]


@pytest.mark.parametrize("seed", range(20))
def test_window_events_stored_one_window_at_a_time_equal_the_union_events(
    sqlite_db: Db, seed: int
) -> None:
    rng = np.random.default_rng(3000 + seed)
    frame, thresholds = random_frame(rng, int(rng.integers(40, 300)))
    context = lookback_samples(thresholds)
    edges = random_boundaries(rng, len(frame))
    windows = list(itertools.pairwise(edges))
    rng.shuffle(windows)  # windows come in any order (a backfill): no cooldown here
    ts = frame["ts"]

    def store(table: str) -> EventStore:
        return EventStore(sqlite_db.engine, sqlite_db.target, table, "s")

    for number, (first, stop) in enumerate(windows):
        window = score_window(frame, thresholds, first, stop, before=context, after=context)
        with store("pieces").session("v1", f"window-{number}") as writer:
            writer.add(
                window.events(),
                window_ts=window.frame["ts"],
                previous_ts=ts.iloc[first - 1] if first else None,
                next_ts=ts.iloc[stop] if stop < len(frame) else None,
            )
    with store("union").session("v1", "union") as writer:
        writer.add(
            score_frame(frame, None, thresholds).events(),
            window_ts=ts,
            previous_ts=None,
            next_ts=None,
        )

    columns = ["axis", "severity", "start_ts", "end_ts", "duration_s", "samples", "peak_residual"]

    def events(table: str) -> pd.DataFrame:
        stored = store(table).read_events()[columns]
        return stored.sort_values(["start_ts", "axis", "severity"], ignore_index=True)

    union = events("union")
    assert len(union) > 3
    pd.testing.assert_frame_equal(events("pieces"), union, obj=f"seed {seed}, windows {windows}")


def test_stored_peak_times_read_back_as_utc_times_inside_their_events(any_db: Db) -> None:
    frame, thresholds = random_frame(np.random.default_rng(7), 200)
    store = EventStore(any_db.engine, any_db.target, any_db.table("events"), any_db.table("s"))
    with store.session("v1", "run") as writer:
        writer.add(
            score_frame(frame, None, thresholds).events(),
            window_ts=frame["ts"],
            previous_ts=None,
            next_ts=None,
        )
    stored = store.read_events()
    assert len(stored) > 3
    for column in ("start_ts", "end_ts", "peak_ts"):
        assert all(str(stamp.tz) == "UTC" for stamp in stored[column]), column
    assert (
        (stored["start_ts"] <= stored["peak_ts"]) & (stored["peak_ts"] <= stored["end_ts"])
    ).all()
