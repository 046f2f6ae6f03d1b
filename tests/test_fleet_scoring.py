"""Scoring per asset, continuous across versions: the retrain handoff, ranges rescored by
another version, per-asset rollback, the old state table, stale sources, and the fleet run."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
from clitools import make_project, run_cli
from conftest import Db
from fleet_helpers import cli_sets
from scoring_helpers import T0, append_asset_rows, fleet_config, publish_linear_version, ts

from Orchestration.fleet_scoring import run_fleet_scoring
from Orchestration.scoring import run_scoring
from Scoring import EventStore

_append = append_asset_rows
_config = fleet_config


def _publish(folder: Path, asset: str, trained_until: int | None = None) -> str:
    until = None if trained_until is None else ts(trained_until)
    return publish_linear_version(folder / "registry" / asset, ["a", "b"], trained_until=until)


def _events(db: Db, asset: str) -> list[tuple]:
    store = EventStore(db.engine, db.target, db.table("events"), db.table("fleet"), asset)
    frame = store.read_events()
    frame = frame[frame["asset"] == asset]
    return [
        (r.axis, r.severity, r.start_ts, r.end_ts, r.samples, r.model_version)
        for r in frame.itertuples()
    ]


def _continuation(db: Db, asset: str):
    store = EventStore(db.engine, db.target, db.table("events"), db.table("fleet"), asset)
    return store.continuation()


@pytest.fixture
def use_db(any_db: Db, monkeypatch: pytest.MonkeyPatch) -> Db:
    monkeypatch.setenv("DB_URL", any_db.url)
    return any_db


QUIET = [0.0] * 10


def test_a_retrained_version_scores_from_where_the_last_run_stopped(
    use_db: Db, tmp_path: Path
) -> None:
    # v1 scores rows 0-9; rows 10-19 arrive with an anomaly at 12-14; v2 is trained on
    # everything up to row 19. Before: v2 started after its training window (row 20) and
    # the anomaly was never scored.
    loaded = _config(use_db, tmp_path)
    _publish(tmp_path, "r1")
    _append(use_db, "r1", QUIET)
    first = run_scoring(loaded, asset="r1")
    assert (first.start, first.end, first.final_until) == (T0, ts(9), ts(9))
    _append(use_db, "r1", [0.0, 0.0, 1.5, 1.5, 1.5, 0.0, 0.0, 0.0, 0.0, 0.0], first=10)
    assert _publish(tmp_path, "r1", trained_until=19) == "v2"

    second = run_scoring(loaded, asset="r1")

    assert (second.version, second.start, second.end, second.samples) == ("v2", ts(9), ts(19), 11)
    assert _events(use_db, "r1") == [("a", "alert", ts(12), ts(14), 3, "v2")]
    assert _continuation(use_db, "r1").scored_until == ts(19)
    assert _continuation(use_db, "r1").model_version == "v2"


def test_a_never_scored_asset_starts_after_its_training_window(use_db: Db, tmp_path: Path) -> None:
    _append(use_db, "r1", QUIET)
    _publish(tmp_path, "r1", trained_until=5)

    report = run_scoring(_config(use_db, tmp_path), asset="r1")

    assert (report.start, report.samples) == (ts(6), 4)


def test_a_range_rescored_by_another_version_keeps_one_set_of_events(
    use_db: Db, tmp_path: Path
) -> None:
    loaded = _config(use_db, tmp_path)
    _publish(tmp_path, "r1")
    _append(use_db, "r1", [0.0, 0.0, 1.5, 1.5, 1.5, 0.0, 0.0, 1.5, 1.5, 0.0, 0.0, 0.0])
    run_scoring(loaded, asset="r1", end=ts(12).to_pydatetime())
    assert [e[-1] for e in _events(use_db, "r1")] == ["v1", "v1"]
    _publish(tmp_path, "r1")

    # v2 rescores rows 3-11: the v1 event 2-4 keeps row 2 only, the one at 7-8 is replaced.
    run_scoring(loaded, asset="r1", start=ts(3).to_pydatetime(), end=ts(12).to_pydatetime())
    assert _events(use_db, "r1") == [
        ("a", "alert", ts(2), ts(2), 1, "v1"),
        ("a", "alert", ts(3), ts(4), 2, "v2"),
        ("a", "alert", ts(7), ts(8), 2, "v2"),
    ]
    # Rescoring the whole range with v2 leaves v2's events only, and again changes nothing.
    for _ in range(2):
        run_scoring(loaded, asset="r1", start=T0.to_pydatetime(), end=ts(12).to_pydatetime())
        assert _events(use_db, "r1") == [
            ("a", "alert", ts(2), ts(4), 3, "v2"),
            ("a", "alert", ts(7), ts(8), 2, "v2"),
        ]


def test_an_event_of_another_version_around_the_rescored_range_is_split(
    use_db: Db, tmp_path: Path
) -> None:
    loaded = _config(use_db, tmp_path)
    _publish(tmp_path, "r1")
    _append(use_db, "r1", [0.0] + [1.5] * 8 + [0.0])
    run_scoring(loaded, asset="r1", end=ts(10).to_pydatetime())
    assert _events(use_db, "r1") == [("a", "alert", ts(1), ts(8), 8, "v1")]
    _publish(tmp_path, "r1")

    run_scoring(loaded, asset="r1", start=ts(4).to_pydatetime(), end=ts(6).to_pydatetime())

    assert _events(use_db, "r1") == [
        ("a", "alert", ts(1), ts(3), 3, "v1"),
        ("a", "alert", ts(4), ts(5), 2, "v2"),
        ("a", "alert", ts(6), ts(8), 3, "v1"),
    ]


def test_rolling_one_asset_back_leaves_the_other_assets_alone(use_db: Db, tmp_path: Path) -> None:
    loaded = _config(use_db, tmp_path)
    for asset in ("r1", "r2"):
        _publish(tmp_path, asset)
        _publish(tmp_path, asset)  # v2: latest
        _append(use_db, asset, [0.0, 1.5, 1.5, 1.5, 0.0, 0.0])
    fleet = run_fleet_scoring(loaded)
    assert [(a.asset, a.version, a.status) for a in fleet.assets] == [
        ("r1", "v2", "ok"),
        ("r2", "v2", "ok"),
    ]
    r2_events, r2_state = _events(use_db, "r2"), _continuation(use_db, "r2")

    run_scoring(loaded, asset="r1", version="v1", start=T0.to_pydatetime())

    assert _events(use_db, "r1") == [("a", "alert", ts(1), ts(3), 3, "v1")]
    assert _events(use_db, "r2") == r2_events == [("a", "alert", ts(1), ts(3), 3, "v2")]
    assert _continuation(use_db, "r2") == r2_state
    assert _continuation(use_db, "r1").scored_until == ts(5)  # the backfill did not move it


def test_a_state_table_keyed_by_version_is_read_then_rebuilt_per_asset(
    use_db: Db, tmp_path: Path
) -> None:
    # An earlier release's table: v1 stopped at row 3, then v2 (the last run) at row 6.
    db = use_db
    old = sa.Table(
        "events_state",
        sa.MetaData(schema=db.schema),
        sa.Column("source_table", sa.String(255), primary_key=True),
        sa.Column("model_version", sa.String(64), primary_key=True),
        sa.Column("scored_until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    with db.engine.begin() as conn:
        old.create(conn)
        conn.execute(
            old.insert(),
            [
                {
                    "source_table": db.table("s"),
                    "model_version": "v2",
                    "scored_until": ts(6),
                    "run_id": "b",
                    "updated_at": T0 + pd.Timedelta(hours=2),
                },
                {
                    "source_table": db.table("s"),
                    "model_version": "v1",
                    "scored_until": ts(3),
                    "run_id": "a",
                    "updated_at": T0 + pd.Timedelta(hours=1),
                },
            ],
        )
    from scoring_helpers import append_samples, loaded_config

    append_samples(db, "s", {"a": [0.0] * 10, "b": [0.0] * 10})
    publish_linear_version(tmp_path / "registry", ["a", "b"])
    publish_linear_version(tmp_path / "registry", ["a", "b"])
    publish_linear_version(tmp_path / "registry", ["a", "b"])  # v3: a newer version

    report = run_scoring(loaded_config(db, tmp_path))

    assert (report.version, report.start, report.samples) == ("v3", ts(6), 4)
    columns = {c["name"] for c in sa.inspect(db.engine).get_columns("events_state", db.schema)}
    assert {"asset", "last_ts", "model_version"} <= columns
    with db.engine.connect() as conn:
        rows = conn.execute(sa.text(f"SELECT asset, model_version FROM {_q(db, 'events_state')}"))
        assert [tuple(r) for r in rows] == [("", "v3")]


def _q(db: Db, name: str) -> str:
    return f'"{db.schema}"."{name}"' if db.schema else f'"{name}"'


def test_no_new_rows_from_an_old_source_is_stale(use_db: Db, tmp_path: Path) -> None:
    loaded = _config(use_db, tmp_path)
    _publish(tmp_path, "r1")
    _append(use_db, "r1", QUIET)  # 2026-01-05: long ago
    assert not run_scoring(loaded, asset="r1").stale

    again = run_scoring(loaded, asset="r1")

    assert again.stale and again.status.code == "stale"
    assert int(again.exit_code(None)) == 10
    assert "no new rows" in again.detail and "scoring.stale_after 1:00:00" in again.detail
    off = run_scoring(_config(use_db, tmp_path, "scoring.stale_after=null"), asset="r1")
    assert not off.stale and int(off.exit_code(None)) == 0
    # A closed window (--end) is a backfill: never stale.
    closed = run_scoring(loaded, asset="r1", start=ts(5).to_pydatetime(), end=ts(8).to_pydatetime())
    assert not closed.stale


def test_no_new_rows_from_a_recent_source_is_not_stale(use_db: Db, tmp_path: Path) -> None:
    loaded = _config(use_db, tmp_path)
    _publish(tmp_path, "r1")
    recent = (pd.Timestamp.now(tz="UTC") - pd.Timedelta(minutes=10) - T0).total_seconds()
    _append(use_db, "r1", QUIET, first=int(recent))
    run_scoring(loaded, asset="r1")

    again = run_scoring(loaded, asset="r1")

    assert not again.stale and again.status.code == "ok"


def test_fleet_scoring_skips_assets_without_a_version_and_reports_each(
    sqlite_db: Db, tmp_path: Path
) -> None:
    _publish(tmp_path, "r1")
    _append(sqlite_db, "r1", [0.0, 1.5, 1.5, 1.5, 0.0, 0.0])
    _append(sqlite_db, "r2", QUIET)  # never trained
    config = make_project(tmp_path)
    options = cli_sets("events.merge_gap_seconds=0", "fleet.workers=1")

    first = run_cli(
        "orchestrate.py",
        "score",
        "--json",
        "--fail-on",
        "alert",
        *options,
        config=config,
        db_url=sqlite_db.url,
    )
    second = run_cli(
        "orchestrate.py", "score", "--json", *options, config=config, db_url=sqlite_db.url
    )
    refused = run_cli(
        "orchestrate.py", "score", "--version", "v1", *options, config=config, db_url=sqlite_db.url
    )
    unknown = run_cli(
        "orchestrate.py", "score", "--asset", "r9", *options, config=config, db_url=sqlite_db.url
    )

    assert first.code == 6, first.stderr
    payload = first.json()
    assert payload["counts"] == {"ok": 1, "stale": 0, "no-model": 1, "failed": 0}
    assert payload["events"] == {"alert": 1, "error": 0}
    assert [
        (e["asset"], e["axis"], e["severity"], e["start"], e["ratio"])
        for e in payload["worst_events"]
    ] == [("r1", "a", "alert", ts(1).isoformat(), 1.5)]
    assert [(a["asset"], a["status"]) for a in payload["assets"]] == [
        ("r1", "ok"),
        ("r2", "no-model"),
    ]
    assert second.code == 10, second.stderr
    assert second.json()["status"]["code"] == "stale"
    assert refused.code == 2 and "add --asset ID" in refused.stderr
    assert unknown.code == 2 and "no such asset" in unknown.stderr


def test_an_asset_whose_champion_alias_is_broken_fails_alone(use_db: Db, tmp_path: Path) -> None:
    for asset in ("r1", "r2", "r3"):
        _publish(tmp_path, asset)
        _append(use_db, asset, [0.0, 1.5, 1.5, 1.5, 0.0, 0.0])
    aliases = tmp_path / "registry" / "r2" / "aliases"
    aliases.mkdir(exist_ok=True)
    (aliases / "champion").write_text("v7\n")  # names a version that does not exist

    report = run_fleet_scoring(_config(use_db, tmp_path, "fleet.batch_assets=3"))

    status = {a.asset: (a.status, a.code) for a in report.assets}
    assert status == {"r1": ("ok", None), "r2": ("failed", "registry-error"), "r3": ("ok", None)}
    assert len(_events(use_db, "r1")) == len(_events(use_db, "r3")) == 1
    assert _events(use_db, "r2") == []
