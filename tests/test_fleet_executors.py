"""The executors give the same versions and events: this process, a local process pool, and a
real Dask LocalCluster of two worker processes (which read DB_URL from the project's .env,
as workers on other machines do)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from conftest import Db
from fleet_helpers import asset_frame, fleet_config, write_fleet

from Orchestration.fleet import run_fleet_training
from Orchestration.fleet_scoring import run_fleet_scoring
from Scoring import EventStore

ASSETS = ["r1", "r2", "r3", "r4", "r5"]


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    """Two worker processes, started without DB_URL: they find it in each project's .env."""
    distributed = pytest.importorskip("distributed")
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("DB_URL", raising=False)
        local = distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
        )
    with local:
        yield local.scheduler_address


def _fleet(db: Db) -> None:
    frames = []
    for index, asset in enumerate(ASSETS):
        rows = 20 if asset == "r4" else 120  # r4 needs more data
        frame = asset_frame(asset, rows, seed=index)
        if asset != "r4":
            # After the training window (the first 100 s): a sustained offset on axis a.
            frame.loc[105:110, "a"] += 3.0
        frames.append(frame)
    write_fleet(db, frames)


def _run(db: Db, folder: Path, *executor: str) -> tuple[list, dict, pd.DataFrame]:
    loaded = fleet_config(
        db,
        folder,
        f"fleet.table={db.table('fleet_state_' + folder.name)}",
        f"events.table={db.table('events_' + folder.name)}",
        "fleet.min_samples=50",
        f"data.train_end={(pd.Timestamp('2026-01-05T00:01:40Z')).isoformat()}",
        *executor,
    )
    trained = run_fleet_training(loaded)
    scored = run_fleet_scoring(loaded, end=pd.Timestamp("2026-01-05T00:02:00Z").to_pydatetime())
    artifacts = {
        asset: (folder / "registry" / asset / "v1" / "thresholds.json").read_bytes()
        + (folder / "registry" / asset / "v1" / "models.json").read_bytes()
        for asset in ASSETS
        if asset != "r4"
    }
    store = EventStore(db.engine, db.target, db.table("events_" + folder.name), db.table("fleet"))
    events = store.read_events().drop(columns=["id", "run_id", "created_at", "updated_at"])
    outcomes = [(o.asset, o.status, o.version, o.samples, o.missing) for o in trained.outcomes]
    scores = [(s.asset, s.status, s.version, s.samples, s.events) for s in scored.assets]
    return [outcomes, scores], artifacts, events.sort_values(["asset", "start_ts", "axis"])


@pytest.mark.slow
def test_a_process_pool_and_a_dask_cluster_give_the_same_versions_and_events(
    any_db: Db, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cluster: str
) -> None:
    monkeypatch.setenv("DB_URL", any_db.url)
    _fleet(any_db)
    runs = {}
    for name, executor in {
        "here": ["fleet.workers=1"],
        "pool": ["fleet.workers=2", "fleet.batch_assets=1"],
        "dask": ["fleet.executor=dask", f"fleet.scheduler_address={cluster}"],
    }.items():
        folder = tmp_path / name
        folder.mkdir()
        (folder / ".env").write_text(f"DB_URL={any_db.url}\n", encoding="utf-8")
        runs[name] = _run(any_db, folder, *executor)

    summary, artifacts, events = runs["here"]
    assert summary[0] == [
        ("r1", "trained", "v1", 100, None),
        ("r2", "trained", "v1", 100, None),
        ("r3", "trained", "v1", 100, None),
        ("r4", "needs-data", None, 20, 30),
        ("r5", "trained", "v1", 100, None),
    ]
    assert [(s[0], s[1], s[3]) for s in summary[1]] == [
        ("r1", "ok", 20),
        ("r2", "ok", 20),
        ("r3", "ok", 20),
        ("r4", "no-model", 0),
        ("r5", "ok", 20),
    ]
    assert set(events["asset"]) == {"r1", "r2", "r3", "r5"}
    for name in ("pool", "dask"):
        assert runs[name][0] == summary, name
        assert runs[name][1] == artifacts, name
        pd.testing.assert_frame_equal(
            runs[name][2].reset_index(drop=True), events.reset_index(drop=True), obj=name
        )


@pytest.mark.slow
def test_dask_workers_without_the_database_url_fail_each_asset_with_db_error(
    sqlite_db: Db, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cluster: str
) -> None:
    # The run itself has DB_URL; the workers have neither it nor a .env next to the config.
    monkeypatch.setenv("DB_URL", sqlite_db.url)
    write_fleet(sqlite_db, [asset_frame("r1", 60), asset_frame("r2", 60, seed=1)])
    loaded = fleet_config(
        sqlite_db,
        tmp_path,
        "fleet.min_samples=50",
        "fleet.executor=dask",
        f"fleet.scheduler_address={cluster}",
        "database.embedded_demo=false",
    )

    report = run_fleet_training(loaded)

    assert [(o.asset, o.status, o.code) for o in report.outcomes] == [
        ("r1", "failed", "db-error"),
        ("r2", "failed", "db-error"),
    ]
    assert "environment variable DB_URL is not set" in str(report.outcomes[0].reason)
    assert (report.status.code, int(report.status.exit_code)) == ("db-error", 5)
