"""A fleet task reads its assets' states and windows together: the same events and state as
scoring each asset on its own.

``EventStore.continuations`` gives what ``continuation`` gives per asset; ``neighbour_times``
what ``lookback_start`` / ``lookahead_end`` give per request, in one statement; and a fleet
score run with the read-ahead (``prefetch_windows``) stores the same events and continuation
points as the same runs with every asset reading its own, over back-to-back runs, a run with
an end, a rescored range and an asset without a version.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from conftest import Db
from fleet_helpers import asset_frame, write_fleet
from scoring_helpers import T0, append_asset_rows, fleet_config, publish_linear_version, ts

from DataExtractionAnalysis import (
    DataConfig,
    extractor,
    lookahead_end,
    lookback_start,
    neighbour_times,
)
from Orchestration import fleet_scoring, scoring
from Orchestration.fleet_scoring import run_fleet_scoring
from Scoring import EventStore

ASSETS = ["r1", "r2", "r3", "r4", "r5"]


@pytest.fixture
def use_db(any_db: Db, monkeypatch: pytest.MonkeyPatch) -> Db:
    monkeypatch.setenv("DB_URL", any_db.url)
    return any_db


def test_neighbour_times_equal_their_own_queries(any_db: Db) -> None:
    write_fleet(any_db, [asset_frame(a, 30 + 5 * a, seed=a) for a in (1, 2, 3)])
    data = DataConfig(table=any_db.table("fleet"), axes=["a", "b"], asset_col="asset")
    requests = [
        (asset, (T0 + pd.Timedelta(seconds=second)).to_pydatetime(), samples, forward)
        for asset in (1, 2, 3, 9)  # 9: no rows
        for second in (-5, 0, 12, 33, 400)
        for samples in (0, 1, 4, 50)
        for forward in (False, True)
    ]
    expected = [
        (lookahead_end if forward else lookback_start)(
            any_db.engine, any_db.target, data, anchor, samples, asset=asset
        )
        for asset, anchor, samples, forward in requests
    ]
    assert neighbour_times(any_db.engine, any_db.target, data, requests) == expected
    assert sum(value is not None for value in expected) > 40
    assert neighbour_times(any_db.engine, any_db.target, data, []) == []


def _store(db: Db, table: str, asset: str = "") -> EventStore:
    return EventStore(db.engine, db.target, db.table(table), db.table("fleet"), asset)


def _events(db: Db, table: str) -> pd.DataFrame:
    frame = _store(db, table).read_events()
    frame = frame.drop(columns=["id", "run_id", "created_at", "updated_at"])
    return frame.sort_values(["asset", "axis", "severity", "start_ts"]).reset_index(drop=True)


def _states(db: Db, table: str) -> dict[str, object]:
    return _store(db, table).continuations([*ASSETS, "r9"])


def test_fleet_scoring_reading_ahead_equals_each_asset_reading_its_own(
    use_db: Db, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = tmp_path / "registry"
    publish_linear_version(registry / "r1", ["a", "b"])
    publish_linear_version(registry / "r2", ["a", "b"], trained_until=ts(9))
    publish_linear_version(registry / "r4", ["a", "b"], t_long=3)
    publish_linear_version(registry / "r5", ["a", "b"], trained_until=ts(30))  # no rows after
    anomalies = {"r1": (5, 8), "r2": (12, 15), "r3": (2, 4), "r4": (14, 18), "r5": (1, 3)}
    for asset, (lo, hi) in anomalies.items():  # r3: never trained
        append_asset_rows(use_db, asset, [1.5 if lo <= i < hi else 0.0 for i in range(20)])
    assert _store(use_db, "events").continuations(ASSETS) == dict.fromkeys(ASSETS)

    reads: list[str] = []  # window queries (each asset's own, or several assets' at once)
    for name in ("_read_sqlalchemy", "_read_arrow", "_on_kept_copy_connection"):
        reader = getattr(extractor, name)
        monkeypatch.setattr(
            extractor, name, lambda *a, _read=reader, **k: reads.append("read") or _read(*a, **k)
        )
    neighbours: list[object] = []
    single = extractor._neighbour_time
    monkeypatch.setattr(
        extractor, "_neighbour_time", lambda *a, **k: neighbours.append(a) or single(*a, **k)
    )

    def both(**window: object) -> list[list[tuple[str, str, str | None]]]:
        """The same run with the read-ahead (``events``) and each asset alone (``alone``)."""
        found, asked = [], []
        for table in ("events", "alone"):
            windows: list[tuple[object, object, object]] = []
            read = scoring.extract_window

            def recorded(*args, _read=read, _windows=windows, **kwargs):
                _windows.append((kwargs["asset"], kwargs["start"], kwargs["end"]))
                return _read(*args, **kwargs)

            loaded = fleet_config(
                use_db, tmp_path, f"events.table={use_db.table(table)}", "fleet.batch_assets=5"
            )
            with monkeypatch.context() as patch:
                patch.setattr(scoring, "extract_window", recorded)
                if table == "alone":
                    patch.setattr(fleet_scoring, "_prefetch", lambda *args: {})
                report = run_fleet_scoring(loaded, **window)
            found.append([(a.asset, a.status, a.version) for a in report.assets])
            asked.append(windows)
        # Each run asks for the same windows (look-back and look-ahead included) both ways.
        assert asked[0] == asked[1]
        assert len(asked[0]) >= 3
        return found

    together, alone = both(end=ts(16).to_pydatetime())
    assert together == alone
    # r5's training window ends after --end: it fails alone, both ways.
    assert [status for _, status, _ in together] == ["ok", "ok", "no-model", "ok", "failed"]
    assert len(reads) == 2 + 3  # together: the first window alone, then two at once
    assert len(neighbours) == 6  # alone: each window's look-back and look-ahead; together none
    for asset, (lo, hi) in anomalies.items():  # the anomaly of r4 continues past row 19
        rows = [1.5 if lo <= i < hi or (asset == "r4" and i < 22) else 0.0 for i in range(20, 30)]
        append_asset_rows(use_db, asset, rows, first=20)
    for window in ({}, {"start": ts(3).to_pydatetime(), "end": ts(25).to_pydatetime()}):
        together, alone = both(**window)
        assert together == alone
        assert [status for _, status, _ in together][:4] == ["ok", "ok", "no-model", "ok"]

    events = _events(use_db, "events")
    pd.testing.assert_frame_equal(events, _events(use_db, "alone"))
    assert sorted(set(events["asset"])) == ["r1", "r2", "r4"]
    assert len(events) >= 3
    states = _states(use_db, "events")
    assert states == _states(use_db, "alone")
    assert states["r3"] is None and states["r9"] is None
    assert {asset: states[asset].scored_until for asset in ("r1", "r2")} == {
        "r1": ts(29),
        "r2": ts(29),
    }
    assert states["r1"] == _store(use_db, "events", "r1").continuation()
