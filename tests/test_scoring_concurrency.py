"""Two score runs at once on adjacent windows cutting one episode store it as one event.

The interleaving is forced, not left to chance: run A is held right after it has read the
stored events (inside its transaction), and released only once run B has either read them too
(no lock: B reads before A writes, so the episode would be split into two rows) or is waiting
for the lock (PostgreSQL: B's advisory lock request shows as not granted in ``pg_locks``;
SQLite: B has issued ``BEGIN IMMEDIATE`` while A holds the write lock, so it cannot get it
before A commits). Only a hang guard bounds the waits; no step depends on the machine's speed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from conftest import Db
from scoring_helpers import (
    T0,
    append_samples,
    loaded_config,
    publish_linear_version,
    stored_events,
    ts,
    use_database,
)

from Orchestration.scoring import ScoringReport, run_scoring
from Scoring import EventStore
from Scoring._lock import lock_key

HANG_GUARD_S = 300  # only turns a deadlock into a failure; a passing run never waits on it


def _wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + HANG_GUARD_S
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what}")
        time.sleep(0.01)


def _advisory_lock_waiting(db: Db) -> Callable[[], bool]:
    """True while some session waits for the writers' lock of ``db``'s events table."""
    key = lock_key(db.schema or "", "events", "")
    high, low = (key >> 32) & 0xFFFFFFFF, key & 0xFFFFFFFF
    query = sa.text(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
        "AND classid::bigint = :high AND objid::bigint = :low AND objsubid = 1"
    )

    def waiting() -> bool:
        with db.engine.connect() as conn:
            return bool(conn.execute(query, {"high": high, "low": low}).scalar_one())

    return waiting


def test_two_runs_at_once_on_adjacent_windows_store_one_event_per_severity(
    any_db: Db, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # One episode over rows 3-6 (alert and error); A scores rows 0-4, B rows 5-9.
    append_samples(any_db, "s", {"a": [0, 0, 0, 2.5, 2.5, 2.5, 2.5, 0, 0, 0], "b": [0] * 10})
    use_database(any_db, monkeypatch)
    publish_linear_version(tmp_path / "registry", ["a", "b"])
    loaded = loaded_config(any_db, tmp_path)
    windows = {"A": (T0, ts(5)), "B": (ts(5), ts(10))}
    # The tables exist already, as after any earlier run (creating them is serialised anyway).
    with EventStore(
        any_db.engine, any_db.target, any_db.table("events"), any_db.table("s")
    ).session("v1", "setup"):
        pass

    a_has_read, release_a, b_has_read, b_at_lock = (threading.Event() for _ in range(4))
    real_existing = EventStore._existing

    def existing(self: EventStore, *args: Any) -> Any:
        found = real_existing(self, *args)
        if threading.current_thread().name == "A":
            a_has_read.set()
            release_a.wait(HANG_GUARD_S)
        else:
            b_has_read.set()
        return found

    monkeypatch.setattr(EventStore, "_existing", existing)

    def before_execute(conn, cursor, statement: str, *args: Any) -> None:
        if threading.current_thread().name == "B" and statement.startswith("BEGIN IMMEDIATE"):
            b_at_lock.set()

    sa.event.listen(sa.Engine, "before_cursor_execute", before_execute)
    try:
        reports: dict[str, ScoringReport | BaseException] = {}

        def score(name: str) -> None:
            start, end = windows[name]
            try:
                reports[name] = run_scoring(
                    loaded, start=start.to_pydatetime(), end=end.to_pydatetime()
                )
            except BaseException as exc:  # reported by the assertions below
                reports[name] = exc

        run_a = threading.Thread(target=score, args=("A",), name="A")
        run_b = threading.Thread(target=score, args=("B",), name="B")
        run_a.start()
        _wait_for(lambda: a_has_read.is_set() or not run_a.is_alive(), "run A to read")
        run_b.start()
        b_waits = _advisory_lock_waiting(any_db) if any_db.schema else lambda: b_at_lock.is_set()
        _wait_for(
            lambda: b_has_read.is_set() or b_waits() or not run_b.is_alive(),
            "run B to read the events or to wait for the lock",
        )
        b_read_before_a_wrote = b_has_read.is_set()
        release_a.set()
        run_a.join(HANG_GUARD_S)
        run_b.join(HANG_GUARD_S)
    finally:
        sa.event.remove(sa.Engine, "before_cursor_execute", before_execute)
        release_a.set()

    assert not b_read_before_a_wrote, "run B read the stored events while run A was writing"
    assert {name: type(report).__name__ for name, report in reports.items()} == {
        "A": "ScoringReport",
        "B": "ScoringReport",
    }, reports
    events = stored_events(any_db)[["axis", "severity", "start_ts", "end_ts", "samples"]]
    assert events.to_dict("records") == [
        {"axis": "a", "severity": s, "start_ts": ts(3), "end_ts": ts(6), "samples": 4}
        for s in ("alert", "error")
    ]
