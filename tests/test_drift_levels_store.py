"""The drift levels table: a run's block sums added to the stored ones, with the stored rows
read again or taken from what the run loaded earlier in its transaction: the same rows."""

from __future__ import annotations

import numpy as np
import sqlalchemy as sa
from conftest import Db

from Scoring import EventStore
from Scoring.drift import DriftStateStore


def _store(db: Db, asset: str) -> DriftStateStore:
    events = EventStore(db.engine, db.target, db.table("events"), db.table("s"), asset)
    store = DriftStateStore(db.table("events_drift"), events.events, db.table("s"), asset)
    store.prepare(db.engine)
    return store


def _blocks(ids: list[int], sums: list[float], counts: list[int]) -> tuple[np.ndarray, ...]:
    return np.array(ids, np.int64), np.array(sums, np.float64), np.array(counts, np.int64)


def _rows(db: Db, store: DriftStateStore) -> list[tuple]:
    levels = store.levels.c
    stmt = (
        sa.select(levels.axis, levels.model_version, levels.block, levels["sum"], levels["count"])
        .where(levels.asset == store.asset)
        .order_by(levels.axis, levels.model_version, levels.block)
    )
    with db.engine.connect() as conn:
        return [tuple(row) for row in conn.execute(stmt)]


def test_levels_saved_from_the_loaded_blocks_equal_those_saved_after_reading_them(
    any_db: Db,
) -> None:
    earlier = {
        "a": _blocks([3, 4, 5, 6], [0.1, 0.25, -1.5, 3.0], [10, 9, 10, 2]),
        "b": _blocks([4, 5, 6], [2.0, 1e-9, 7.5], [3, 10, 10]),
    }
    runs = [
        (4, {"a": _blocks([6, 7], [0.7, 0.3], [8, 10]), "b": _blocks([7], [1.0], [1])}),
        (5, {"a": _blocks([6], [0.1], [1]), "c": _blocks([6, 7], [1.0, 2.0], [1, 2])}),
        (7, {"a": _blocks([5, 6], [0.5, 0.5], [1, 1])}),  # a block before `since`: read
    ]
    found = []
    for asset, use_known in (("r1", True), ("r2", False)):
        store = _store(any_db, asset)
        with any_db.engine.begin() as conn:
            store.save_levels(conn, "v1", earlier)
            store.save_levels(conn, "v2", {"a": _blocks([6], [9.0], [9])})  # another version
        for since, added in runs:
            with any_db.engine.begin() as conn:
                loaded = store.load_levels(conn, "v1", since)
                known = (since, loaded) if use_known else None
                store.save_levels(conn, "v1", added, known=known)
        found.append(_rows(any_db, store))
    assert found[0] == found[1]
    assert ("a", "v1", 6, 3.0 + 0.7 + 0.1 + 0.5, 2 + 8 + 1 + 1) in found[0]
    assert ("a", "v2", 6, 9.0, 9) in found[0]
    assert ("c", "v1", 7, 2.0, 2) in found[0]
    assert len(found[0]) == 12  # a: 3-7, b: 4-7, c: 6-7 of v1; a: 6 of v2
