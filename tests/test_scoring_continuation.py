"""Where a score run starts and what it leaves for the next one: the training end, the stored
continuation point, backfills and empty windows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from clitools import make_project, run_cli
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

from Database import write_chunks
from ModelRegistry import ModelRegistry
from Orchestration import load_config, run_training
from Orchestration.scoring import run_scoring
from Scoring import EventStore

EPOCH_BASE = 1_767_571_200.0  # 2026-01-05T00:00:00Z
STEP_S = 1.7  # sample 199 is 1767571538.3, whose nearest float lies just below the .3


@pytest.mark.parametrize("epoch", [True, False], ids=["epoch-seconds", "timestamps"])
def test_the_first_run_starts_at_the_first_sample_after_the_training_window(
    sqlite_db: Db, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, epoch: bool
) -> None:
    # 300 samples; training takes the first 200, so the first score run scores exactly 100.
    rng = np.random.default_rng(5)
    seconds = EPOCH_BASE + STEP_S * np.arange(300)
    frame = pd.DataFrame(
        {"ts": seconds, "a": 5 + rng.normal(0, 1, 300), "b": 7 + rng.normal(0, 1, 300)}
    )
    if not epoch:
        frame["ts"] = pd.to_datetime(frame["ts"], unit="s", utc=True).dt.round("ms")
    time_type = sa.Float(53) if epoch else sa.DateTime(timezone=True)
    columns = {"ts": time_type, "a": sa.Float(53), "b": sa.Float(53)}
    write_chunks(sqlite_db.engine, sqlite_db.target, "s", columns, [frame])
    use_database(sqlite_db, monkeypatch)
    between = pd.Timestamp((seconds[199] + seconds[200]) / 2, unit="s", tz="UTC").floor("ms")
    loaded = load_config(
        make_project(tmp_path),
        [
            "data.table=s",
            "data.axes=[a, b]",
            f"data.train_end={between.isoformat()}",
            "plots.enabled=false",
        ],
    )
    run_training(loaded)
    trained = ModelRegistry(tmp_path / "registry").load("latest").meta["data"]
    assert trained["rows"] == 200

    report = run_scoring(loaded)

    assert report.samples == 100
    assert report.start == pd.Timestamp(seconds[200], unit="s", tz="UTC").round("ms")


def _state(db: Db) -> pd.Timestamp | None:
    return EventStore(db.engine, db.target, db.table("events"), db.table("s")).scored_until()


@pytest.fixture
def project(any_db: Db, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    use_database(any_db, monkeypatch)
    publish_linear_version(tmp_path / "registry", ["a", "b"])
    return loaded_config(any_db, tmp_path)


def test_a_backfill_leaves_the_continuation_point_where_it_is(any_db: Db, project) -> None:
    append_samples(any_db, "s", {"a": [0.0, 1.5, 1.5] + [0.0] * 27, "b": [0.0] * 30})
    run_scoring(project, start=T0.to_pydatetime(), end=ts(10).to_pydatetime())
    assert _state(any_db) == ts(10)

    later = run_scoring(project, start=ts(20).to_pydatetime(), end=ts(25).to_pydatetime())
    earlier = run_scoring(project, start=T0.to_pydatetime(), end=ts(5).to_pydatetime())

    assert (later.samples, earlier.samples) == (5, 5)
    assert _state(any_db) == ts(10)  # not 25: the gap [10, 20) is still to be scored
    resumed = run_scoring(project)
    assert (resumed.start, resumed.samples) == (ts(10), 20)


def test_an_empty_window_is_ok_with_zero_counts_and_writes_nothing(
    any_db: Db, project, tmp_path: Path
) -> None:
    append_samples(any_db, "s", {"a": [0.0, 1.5, 1.5, 0.0], "b": [0.0] * 4})
    output = tmp_path / "levels.csv"

    report = run_scoring(
        project, start=ts(100).to_pydatetime(), end=ts(200).to_pydatetime(), output=output
    )

    assert report.samples == 0
    assert report.counts == {"a": {"alert": 0, "error": 0}, "b": {"alert": 0, "error": 0}}
    assert report.written == {}
    assert int(report.exit_code("alert")) == 0
    assert not output.exists()
    assert not sa.inspect(any_db.engine).has_table("events", schema=any_db.schema)


def test_score_cli_on_an_empty_window_says_ok(sqlite_db: Db, tmp_path: Path) -> None:
    config = make_project(tmp_path, "data: {table: s, axes: [a, b]}\n")
    publish_linear_version(tmp_path / "registry", ["a", "b"])
    append_samples(sqlite_db, "s", {"a": [0.0, 1.5, 1.5, 0.0], "b": [0.0] * 4})
    window = ["--start", ts(100).isoformat(), "--end", ts(200).isoformat()]

    empty = run_cli(
        "orchestrate.py",
        "score",
        "--json",
        "--fail-on",
        "alert",
        *window,
        config=config,
        db_url=sqlite_db.url,
    )

    assert empty.code == 0, empty.stderr
    payload = empty.json()
    assert payload["status"] == {"code": "ok", "detail": "no samples in the window yet"}
    assert payload["samples"] == 0
    assert payload["counts"] == {"a": {"alert": 0, "error": 0}, "b": {"alert": 0, "error": 0}}
    assert stored_events(sqlite_db).empty
