"""Staleness: a version older than registry.max_model_age, or whose axes drift, is flagged for
retraining in the score summary and in the fleet table's output."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from ModelRegistry import RegistryConfig
from Orchestration.drift import retrain_reason

NOW = pd.Timestamp("2026-03-01T00:00:00Z")
DAYS_30 = dt.timedelta(days=30)


def test_a_young_version_without_drift_needs_nothing() -> None:
    assert retrain_reason("v3", "2026-02-15T00:00:00+00:00", DAYS_30, {}, now=NOW) is None


def test_an_old_version_is_flagged_with_its_age() -> None:
    assert retrain_reason("v3", "2026-01-01T00:00:00+00:00", DAYS_30, {}, now=NOW) == (
        "v3 is 59 days old (registry.max_model_age 30 days)"
    )
    assert retrain_reason("v3", "2026-01-01T00:00:00+00:00", None, {}, now=NOW) is None
    assert retrain_reason("v3", None, DAYS_30, {}, now=NOW) is None


def test_drifting_axes_are_reasons_too() -> None:
    drifting = {"axis3": {"direction": "up", "since": "2026-02-27T05:00:00+00:00"}}
    assert retrain_reason("v3", "2026-02-20T00:00:00Z", DAYS_30, drifting, now=NOW) == (
        "axis3 drifts up since 2026-02-27T05:00:00+00:00"
    )


@pytest.mark.parametrize(("text", "days"), [("30d", 30), ("8w", 56), (None, None)])
def test_max_model_age_takes_durations(text: str | None, days: int | None) -> None:
    age = RegistryConfig(max_model_age=text).max_model_age
    assert (None if age is None else age.days) == days


def test_max_model_age_refuses_nonsense() -> None:
    with pytest.raises(ValueError, match="must be a positive duration such as 12h, 30d or 8w"):
        RegistryConfig(max_model_age="soon")


def test_fleet_output_flags_old_versions(sqlite_db, tmp_path) -> None:
    from clitools import make_project, run_cli
    from fleet_helpers import asset_frame, cli_sets, write_fleet

    write_fleet(sqlite_db, [asset_frame("r1", 60), asset_frame("r2", 60, seed=1)])
    config = make_project(tmp_path)
    options = cli_sets("fleet.min_samples=40", "model.type=linear", "plots.enabled=false")
    assert run_cli("main.py", *options, config=config, db_url=sqlite_db.url).code == 0

    fresh = run_cli(
        "orchestrate.py", "fleet", "--json", *options, config=config, db_url=sqlite_db.url
    )
    aged = run_cli(
        "orchestrate.py",
        "fleet",
        "--json",
        *options,
        "--set",
        "registry.max_model_age=1s",
        config=config,
        db_url=sqlite_db.url,
    )

    assert fresh.code == 0, fresh.stdout + fresh.stderr
    assert [a["retrain"] for a in fresh.json()["assets"]] == [None, None]
    reasons = [a["retrain"] for a in aged.json()["assets"]]
    compared = run_cli(
        "orchestrate.py",
        "fleet",
        "--compare",
        "--json",
        *options,
        config=config,
        db_url=sqlite_db.url,
    )
    assert compared.code == 0, compared.stderr
    assert set(compared.json()["compare"]["assets"]) == {"r1", "r2"}
    assert compared.json()["compare"]["insights"][0].startswith("asset r")
    tail = "(registry.max_model_age 0:00:01)"
    assert all(r.startswith("v1 is 0:00:") and r.endswith(tail) for r in reasons), reasons


def test_the_score_summary_lists_drift_health_trend_and_retraining() -> None:
    from types import SimpleNamespace

    from Orchestration.report import format_scoring

    report = SimpleNamespace(
        detail="scored 10 samples",
        counts={"a": {"alert": 0, "error": 0}},
        output=None,
        drift={"started": 1, "drifting": {"a": {"direction": "up", "since": "2026-01-11T05:00"}}},
        health={
            "b": {
                "grade": "low",
                "findings": [{"check": "flat", "reason": "the value 1 repeats", "action": "x"}],
            }
        },
        sensor={"b": 2},
        trend={"a": {"days": 12.04, "days_early": 10.0, "days_late": 15.96}},
        retrain="a drifts up since 2026-01-11T05:00",
        worst=[],
        asset=None,
    )
    assert format_scoring(report).splitlines()[-5:] == [
        "drift: a drifts up since 2026-01-11T05:00",
        "sensor health: b low (flat: the value 1 repeats)",
        "dead sensor: b (2 sensor events)",
        "time to threshold: a reaches its error threshold in about 12.0 days (10.0 to 16.0)",
        "retrain: a drifts up since 2026-01-11T05:00",
    ]
    quiet = SimpleNamespace(
        detail="d",
        counts={"a": {}},
        output=None,
        drift={"started": 1, "drifting": {}},
        health={},
        sensor={},
        trend={},
        retrain=None,
        worst=[],
        asset=None,
    )
    assert format_scoring(quiet).splitlines()[-2:] == [
        "drift: no axis drifts now (1 drift event began in the run)",
        "time to threshold: no axis trends significantly towards its threshold",
    ]
