"""What training does with an axis graded low: refuse (exit 11, nothing registered), skip (the
version leaves it out and scoring takes data.axes as configured), warn; and where the grades
show (meta.yaml, registry show)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from clitools import make_project, run_cli
from conftest import Db
from scoring_helpers import use_database

from ModelRegistry import ModelRegistry
from Orchestration import load_config, run_training
from Orchestration.scoring import run_scoring

T0 = pd.Timestamp("2026-01-05", tz="UTC")
ROWS = 1200


def _samples(stuck: bool, beyond: bool = False) -> pd.DataFrame:
    rng = np.random.default_rng(4)
    frame = pd.DataFrame(
        {
            "ts": T0 + pd.to_timedelta(2 * np.arange(ROWS), unit="s"),
            "a": 5 + np.sin(np.arange(ROWS) / 9) + rng.normal(0, 0.1, ROWS),
            "b": 7 + np.cos(np.arange(ROWS) / 13) + rng.normal(0, 0.1, ROWS),
        }
    )
    if stuck:
        frame.loc[300:700, "b"] = 7.125  # 401 equal samples: more than flat_steps 300
    if beyond:
        frame.loc[1100:, "b"] += 20.0  # half the scored samples beyond the training range
    return frame


def _project(db: Db, folder: Path, *overrides: str, stuck: bool = True, beyond: bool = False):
    columns = {"ts": sa.DateTime(timezone=True), "a": sa.Float(53), "b": sa.Float(53)}
    from Database import write_chunks

    write_chunks(db.engine, db.target, "s", columns, [_samples(stuck, beyond)])
    train_end = (T0 + pd.Timedelta(seconds=2 * 1000)).isoformat()
    return load_config(
        make_project(folder),
        [
            "data.table=s",
            "data.axes=[a, b]",
            f"data.train_end={train_end}",
            "plots.enabled=false",
            "model.type=linear",
            *overrides,
        ],
    )


def test_a_flat_axis_is_refused_with_exit_11(sqlite_db: Db, tmp_path: Path) -> None:
    _project(sqlite_db, tmp_path)
    config = tmp_path / "config.yaml"
    options = ["--set", "data.table=s", "--set", "data.axes=[a, b]", "--set", "model.type=linear"]

    run = run_cli("main.py", "--json", *options, config=config, db_url=sqlite_db.url)

    assert run.code == 11, run.stderr
    detail = run.json()["status"]
    assert detail["code"] == "unhealthy"
    assert detail["detail"].startswith(
        "sensor health graded low, training refused: b: flat: the value 7.125 repeats for 401 "
        "samples"
    )
    assert "set health.on_low: skip (train without these axes) or warn" in detail["detail"]
    assert not (tmp_path / "registry").exists() or not list((tmp_path / "registry").iterdir())


def test_skip_leaves_the_axis_out_and_scoring_goes_on(
    sqlite_db: Db, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_database(sqlite_db, monkeypatch)
    loaded = _project(sqlite_db, tmp_path, "health.on_low=skip")

    result = run_training(loaded)

    assert result.axes == ["a"]
    meta = ModelRegistry(tmp_path / "registry").load(result.version).meta
    assert meta["health_skipped"] == ["b"]
    assert meta["health"]["b"]["grade"] == "low"
    assert meta["health"]["a"] == {"grade": "high", "findings": []}
    report = run_scoring(loaded)  # data.axes still names b
    # one axis left: no ssr machine channel (it would repeat the axis)
    assert report.samples == ROWS - 1000 and set(report.counts) == {"a"}


def test_warn_trains_every_axis_and_registry_show_lists_the_grades(
    sqlite_db: Db, tmp_path: Path
) -> None:
    _project(sqlite_db, tmp_path)
    config = tmp_path / "config.yaml"
    options = [
        *("--set", "data.table=s", "--set", "data.axes=[a, b]", "--set", "model.type=linear"),
        *("--set", "health.on_low=warn", "--set", "plots.enabled=false"),
    ]
    trained = run_cli("main.py", *options, config=config, db_url=sqlite_db.url)
    assert trained.code == 0, trained.stderr
    assert "sensor health of b: low (flat: the value 7.125 repeats" in trained.stderr

    shown = run_cli("orchestrate.py", "registry", "show", config=config, db_url=sqlite_db.url)
    assert shown.code == 0, shown.stderr
    expected = "sensor health\n  a  high\n  b  low\n       flat: the value 7.125 repeats"
    assert expected in shown.stdout
    as_json = run_cli(
        "orchestrate.py", "registry", "show", "--json", config=config, db_url=sqlite_db.url
    ).json()
    assert as_json["health"]["b"]["findings"][0]["check"] == "flat"
    assert as_json["meta"]["health_skipped"] == []


def test_clean_data_trains_with_the_default_refuse(
    sqlite_db: Db, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_database(sqlite_db, monkeypatch)
    result = run_training(_project(sqlite_db, tmp_path, stuck=False))
    assert result.axes == ["a", "b"]
    assert result.profile.health["b"].grade == "high"


def test_scoring_reports_samples_beyond_the_training_range(
    sqlite_db: Db, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_database(sqlite_db, monkeypatch)
    loaded = _project(sqlite_db, tmp_path, stuck=False, beyond=True)
    run_training(loaded)

    report = run_scoring(loaded)

    assert set(report.health) == {"b"}
    assert report.health["b"]["grade"] == "medium"
    (finding,) = report.health["b"]["findings"]
    assert finding["check"] == "out of range"
    assert finding["reason"].startswith(
        "50.0% of the scored samples lie outside the training range"
    )
    assert report.to_dict()["health"] == report.health
