"""predictor train and apply end to end on a small synthetic machine: metrics, the registry
version, the feature store, idempotent apply, gating, and every ml_status code."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from clitools import make_project, run_cli
from conftest import Db
from scoring_helpers import publish_linear_version

from Database import write_chunks
from Fleet import AssetOutcome, FleetStateStore
from Labels import FeedbackStore
from Orchestration import load_config
from Orchestration.config import UsageError
from Orchestration.prediction import apply_predictors, train_predictors

T0 = pd.Timestamp("2026-01-05", tz="UTC")
STEP = pd.Timedelta(seconds=30)
ROWS = 8 * 24 * 120  # 8 days at 30 s
INCIDENTS = [int(i) for i in np.linspace(600, ROWS - 600, 14)]


def _machine(db: Db) -> None:
    """Axis a drifts up over the 40 minutes before each incident (the precursor to learn),
    then jumps during the 10-minute incident; b is noise."""
    rng = np.random.default_rng(4)
    a = 5.0 + rng.normal(0, 0.05, ROWS)
    for first in INCIDENTS:
        a[first - 80 : first] += np.linspace(0.0, 1.0, 80)
        a[first : first + 20] += 3.0
    frame = pd.DataFrame(
        {"ts": [T0 + i * STEP for i in range(ROWS)], "a": a, "b": 7 + rng.normal(0, 0.05, ROWS)}
    )
    columns = {"ts": sa.DateTime(timezone=True), "a": sa.Float(53), "b": sa.Float(53)}
    write_chunks(db.engine, db.target, db.table("s"), columns, [frame])
    pd.DataFrame(
        {
            "start_ts": [T0 + i * STEP for i in INCIDENTS],
            "end_ts": [T0 + (i + 19) * STEP for i in INCIDENTS],
            "axis": "a",
            "severity": "error",
        }
    ).to_sql("failures", db.engine, schema=db.schema, index=False)


SETTINGS = [
    "data.axes=[a, b]",
    "predictor.bucket=5m",
    "predictor.windows=[15m, 60m]",
    "predictor.horizon=1h",
    "predictor.folds=3",
    "predictor.n_estimators=30",
    "predictor.table=risk",
]


@pytest.fixture
def project(any_db: Db, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    _machine(any_db)
    monkeypatch.setenv("DB_URL", any_db.url)

    def loaded(*extra: str):
        return load_config(
            make_project(tmp_path),
            [
                f"data.table={any_db.table('s')}",
                f"labels.table={any_db.table('failures')}",
                f"events.table={any_db.table('events')}",
                *SETTINGS,
                f"predictor.table={any_db.table('risk')}",
                *extra,
            ],
        )

    return loaded


def _risk(db: Db) -> pd.DataFrame:
    return pd.read_sql_table("risk", db.engine, schema=db.schema)


def test_train_then_apply_fills_the_table_once(project, any_db: Db, tmp_path: Path) -> None:
    trained = train_predictors(project())

    answer = trained.answers[0]
    assert (trained.code, answer.code, answer.version) == ("ok", "ok", "v1"), answer.detail
    metrics = answer.metrics
    assert metrics["auc"] > 0.75 and metrics["warned"] >= 1  # the ramp gives warning
    assert metrics["mean_forewarning_s"] > 0
    assert sum(map(sum, metrics["confusion"])) == metrics["buckets"]
    version = tmp_path / "ModelRegistry" / "predictors" / "v1"
    for name in ("predictor.pkl", "metrics.json", "importance.csv", "meta.yaml"):
        assert (version / name).is_file(), name
    assert {p.name for p in (version / "plots").iterdir()} == {
        "confusion.png",
        "roc.png",
        "importance.png",
    }
    stored = pd.read_parquet(tmp_path / "out" / "features" / "machine.parquet")
    assert len(stored) == answer.buckets == ROWS * 30 // 300
    assert "a_roc_900s" in stored and "events_3600s" in stored

    first = apply_predictors(project())
    rows = _risk(any_db)
    again = apply_predictors(project(), since=T0.to_pydatetime())

    assert first.code == "ok" and first.answers[0].written == ROWS * 30 // 300
    assert len(rows) == first.answers[0].written
    assert rows["probability"].between(0, 1).all() and set(rows["model_version"]) == {"v1"}
    assert again.answers[0].written == len(rows) and len(_risk(any_db)) == len(rows)
    # Without --since, apply continues at the newest bucket written: that bucket only.
    assert apply_predictors(project()).answers[0].written == 1
    assert len(_risk(any_db)) == len(rows)


def test_too_few_incidents_need_labels_and_train_nothing(
    project, any_db: Db, tmp_path: Path
) -> None:
    loaded = project("predictor.min_incidents=20")
    # A confirmed event inside a labelled incident is the same incident (counted once); one
    # elsewhere is another.
    first = INCIDENTS[0]
    events = pd.DataFrame(
        {
            "id": [1, 2],
            "source_table": any_db.table("s"),
            "asset": "",
            "axis": "a",
            "severity": "error",
            "start_ts": [T0 + (first + 2) * STEP, T0 + 100 * STEP],
            "end_ts": [T0 + (first + 4) * STEP, T0 + 101 * STEP],
            "model_version": "v1",
        }
    )
    FeedbackStore(any_db.engine, any_db.target, any_db.table("events")).label(events, "confirmed")

    run = train_predictors(loaded)

    answer = run.answers[0]
    assert (run.code, answer.code, answer.version) == ("ok", "ok", None)
    assert answer.detail == (
        "needs-labels: 15 known incident(s) in the window, 5 more needed (predictor.min_incidents)"
    )
    assert not (tmp_path / "ModelRegistry" / "predictors").exists()


@pytest.mark.parametrize(
    ("case", "code", "message"),
    [
        ("no-predictor", "missing-ml-models", r"no predictor for the machine"),
        ("no-optuna", "missing-ml-extras", r"predictor.tuning.trials > 0 needs Optuna"),
        ("empty-window", "invalid-ml-input", r"no rows in table .* in the window"),
        ("tampered", "ml-error", r"ChecksumError"),
    ],
)
def test_every_ml_status_is_reachable(
    project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: str, code: str, message: str
) -> None:
    if case == "no-predictor":
        run = apply_predictors(project())
    elif case == "no-optuna":
        monkeypatch.setitem(sys.modules, "optuna", None)  # as if it were not installed
        run = train_predictors(project("predictor.tuning.trials=2"))
    elif case == "empty-window":
        run = train_predictors(project("data.train_end=2020-01-01T00:00:00Z"))
    else:
        assert train_predictors(project()).code == "ok"
        pickled = tmp_path / "ModelRegistry" / "predictors" / "v1" / "predictor.pkl"
        pickled.chmod(0o644)
        pickled.write_bytes(pickled.read_bytes() + b"tampered")
        run = apply_predictors(project())

    assert run.code == code
    assert run.answers[0].code == code
    assert re.search(message, run.answers[0].detail), run.answers[0].detail


def test_the_command_line_exit_codes_follow_ml_status(sqlite_db: Db, tmp_path: Path) -> None:
    _machine(sqlite_db)
    config = make_project(
        tmp_path,
        "data: {table: s, axes: [a, b]}\nlabels: {table: failures}\n"
        "predictor: {bucket: 5m, windows: [15m, 60m], folds: 3, n_estimators: 20}\n",
    )
    missing = run_cli("orchestrate.py", "apply", "--json", config=config, db_url=sqlite_db.url)
    trained = run_cli("orchestrate.py", "predictor", "train", config=config, db_url=sqlite_db.url)
    applied = run_cli("orchestrate.py", "apply", "--json", config=config, db_url=sqlite_db.url)

    assert missing.code == 14
    assert missing.json()["status"]["code"] == "missing-ml-models"
    assert missing.json()["assets"][0]["ml_status"]["code"] == "missing-ml-models"
    assert trained.code == 0 and "machine: ok: trained v1" in trained.stdout
    assert applied.code == 0 and applied.json()["assets"][0]["written"] == ROWS * 30 // 300

    # score applies the predictors in the same run when asked.
    publish_linear_version(tmp_path / "registry", ["a", "b"])
    scored = run_cli(
        "orchestrate.py",
        "score",
        "--json",
        "--set",
        "predictor.apply_on_score=true",
        config=config,
        db_url=sqlite_db.url,
    )
    assert scored.code == 0, scored.stderr
    risk = scored.json()["failure_risk"]
    assert risk["ml_status"]["code"] == "ok" and risk["assets"][0]["written"] == 1


def test_tuning_never_scores_the_buckets_whose_metrics_are_reported(
    project, monkeypatch: pytest.MonkeyPatch
) -> None:
    import Orchestration.prediction as prediction
    from Prediction.model import FailurePredictor

    scored: dict[str, set] = {"tuning": set(), "reported": set()}
    phase = ["reported"]
    predict = FailurePredictor.predict_proba

    def recording(self, features):
        scored[phase[0]].update(features.index)
        return predict(self, features)

    def tuning(*args, **kwargs):
        phase[0] = "tuning"
        try:
            return prediction_tune(*args, **kwargs)
        finally:
            phase[0] = "reported"

    prediction_tune = prediction.tune
    monkeypatch.setattr(FailurePredictor, "predict_proba", recording)
    monkeypatch.setattr(prediction, "tune", tuning)

    run = train_predictors(project("predictor.tuning.trials=2"))

    assert run.code == "ok", run.answers[0].detail
    assert scored["tuning"] and scored["reported"]
    assert not scored["tuning"] & scored["reported"]
    # Every tuned-on bucket lies before every reported one (nested, in time order).
    assert max(scored["tuning"]) < min(scored["reported"])
    assert 0 < run.answers[0].metrics["buckets"] <= len(scored["reported"])


def test_residual_features_are_opt_in(project, tmp_path: Path) -> None:
    # The latest anomaly model was fitted on the window's future: by default no residual
    # features, even with a registered model.
    publish_linear_version(tmp_path / "registry", ["a", "b"])

    assert train_predictors(project()).code == "ok"

    stored = pd.read_parquet(tmp_path / "out" / "features" / "machine.parquet")
    assert "a_mean_900s" in stored
    assert not [column for column in stored if "_absres_" in column]


def test_residuals_under_the_registered_model_are_features(
    project, any_db: Db, tmp_path: Path
) -> None:
    publish_linear_version(tmp_path / "registry", ["a", "b"])  # predicts 1.0: residual = a - 1

    assert train_predictors(project("predictor.residuals=true")).code == "ok"

    stored = pd.read_parquet(tmp_path / "out" / "features" / "machine.parquet")
    samples = pd.read_sql_table("s", any_db.engine, schema=any_db.schema)
    ts = pd.to_datetime(samples["ts"], utc=True)
    bucket = stored.index[40]  # the 15-minute window ends with this 5-minute bucket
    inside = (ts >= bucket - pd.Timedelta(minutes=10)) & (ts < bucket + pd.Timedelta(minutes=5))
    expected = (samples["a"][inside] - 1.0).abs().mean()
    assert stored.loc[bucket, "a_absres_mean_900s"] == pytest.approx(expected, rel=1e-12)
    assert "b_absres_max_3600s" in stored
    meta = (tmp_path / "ModelRegistry" / "predictors" / "v1" / "meta.yaml").read_text()
    assert "a_absres_mean_900s" in meta


def test_a_fleet_gets_a_predictor_per_asset_and_risk_rows_per_asset(
    sqlite_db: Db, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _machine(sqlite_db)
    samples = pd.read_sql_table("s", sqlite_db.engine)
    samples["ts"] = pd.to_datetime(samples["ts"], utc=True)
    columns = {
        "ts": sa.DateTime(timezone=True),
        "robot": sa.Text(),
        "a": sa.Float(53),
        "b": sa.Float(53),
    }
    fleet = [samples.assign(robot=robot)[list(columns)] for robot in ("r1", "r2")]  # r1: incidents
    write_chunks(sqlite_db.engine, sqlite_db.target, "fleet", columns, fleet)
    with sqlite_db.engine.begin() as conn:
        conn.execute(sa.text("ALTER TABLE failures ADD COLUMN robot TEXT"))
        conn.execute(sa.text("UPDATE failures SET robot = 'r1'"))
    monkeypatch.setenv("DB_URL", sqlite_db.url)
    loaded = load_config(
        make_project(tmp_path),
        ["data.table=fleet", "data.asset_col=robot", "labels.table=failures", *SETTINGS],
    )

    trained = train_predictors(loaded)
    applied = apply_predictors(loaded, asset="r1")
    missing = apply_predictors(loaded, asset="r2")

    by_asset = {a.asset: a for a in trained.answers}
    assert by_asset["r1"].version == "v1"
    assert by_asset["r2"].detail.startswith("needs-labels: 0 known incident(s)")
    assert (tmp_path / "ModelRegistry" / "predictors" / "r1" / "v1" / "predictor.pkl").is_file()
    assert applied.code == "ok" and missing.code == "missing-ml-models"
    risk = pd.read_sql_table("risk", sqlite_db.engine)
    assert set(risk["asset"]) == {"r1"} and len(risk) == applied.answers[0].written
    with pytest.raises(UsageError, match=r"--asset 'r9': no such asset in fleet; assets: r1, r2"):
        apply_predictors(loaded, asset="r9")
    # No fleet training yet: predictor train made the rows (status predictor-only).
    config = make_project(
        tmp_path,
        "data: {table: fleet, asset_col: robot, axes: [a, b]}\nlabels: {table: failures}\n",
    )
    shown = run_cli("orchestrate.py", "fleet", "--json", config=config, db_url=sqlite_db.url)
    text = run_cli("orchestrate.py", "fleet", config=config, db_url=sqlite_db.url)
    assert shown.code == 0, shown.stderr
    rows = {row["asset"]: row for row in shown.json()["assets"]}
    assert (rows["r1"]["status"], rows["r1"]["trained"]) == ("predictor-only", False)
    assert (rows["r1"]["predictor_status"], rows["r1"]["predictor_version"]) == ("ok", "v1")
    assert rows["r1"]["predictor_auc"] == pytest.approx(by_asset["r1"].metrics["auc"])
    assert (rows["r2"]["predictor_status"], rows["r2"]["predictor_version"]) == (
        "needs-labels",
        None,
    )
    assert rows["r2"]["predictor_detail"] == by_asset["r2"].detail
    header, _, r1, r2 = text.stdout.splitlines()[:4]
    assert "predictor" in header and "AUC" in header and "forewarning (s)" in header
    assert "ok v1" in r1 and "needs-labels" in r2


def _old_fleet_state(db: Db, loaded) -> FleetStateStore:
    """A fleet state table as made before the predictor's columns existed, with a trained
    row for the machine (asset ``""``)."""
    store = FleetStateStore(db.engine, db.target, db.table("fleet_state"), db.table("s"))
    old = sa.Table(
        "fleet_state",
        sa.MetaData(schema=db.schema),
        *(
            sa.Column(c.name, c.type, primary_key=c.primary_key, nullable=c.nullable)
            for c in store.table.columns
            if not c.name.startswith("predictor_")
        ),
    )
    old.create(db.engine)
    with db.engine.begin() as conn:
        conn.execute(
            old.insert(),
            {
                "source_table": db.table("s"),
                "asset": "",
                "status": "trained",
                "trained": True,
                "version": "v3",
                "samples": 500,
                "families": '{"a": "linear"}',
                "run_id": "train-1",
                "updated_at": T0.to_pydatetime(),
            },
        )
    return store


def test_predictor_train_records_status_and_metrics_in_the_fleet_state(project, any_db: Db) -> None:
    loaded = project(f"fleet.table={any_db.table('fleet_state')}")
    store = _old_fleet_state(any_db, loaded)
    assert store.read()["predictor_status"].isna().all()  # an old table reads, NULL columns

    first = train_predictors(loaded).answers[0]
    after_first = store.read().set_index("asset").loc[""]
    gated = train_predictors(
        project(f"fleet.table={any_db.table('fleet_state')}", "predictor.min_incidents=20")
    )
    after_gated = store.read()

    metrics = first.metrics
    # The training columns are left as they were; the predictor's are filled.
    assert (after_first["status"], after_first["version"], after_first["samples"]) == (
        "trained",
        "v3",
        500,
    )
    assert after_first["run_id"] == "train-1"
    assert (after_first["predictor_status"], after_first["predictor_version"]) == ("ok", "v1")
    assert after_first["predictor_auc"] == pytest.approx(metrics["auc"])
    assert after_first["predictor_f1"] == pytest.approx(metrics["f1"])
    assert after_first["predictor_forewarning_s"] == pytest.approx(metrics["mean_forewarning_s"])
    assert after_first["predictor_detail"].startswith("trained v1: AUC")
    # Gated: the status says so, the asset keeps its last predictor and its metrics.
    assert gated.answers[0].detail.startswith("needs-labels")
    assert len(after_gated) == 1
    row = after_gated.iloc[0]
    assert (row["predictor_status"], row["predictor_version"]) == ("needs-labels", "v1")
    assert row["predictor_auc"] == pytest.approx(metrics["auc"])
    assert row["predictor_detail"] == gated.answers[0].detail
    assert (row["status"], row["version"]) == ("trained", "v3")

    # A training run rewrites its columns and keeps the predictor's.
    store.write(
        [AssetOutcome(asset="", status="trained", version="v4", samples=600)],
        "train-2",
    )
    retrained = store.read().iloc[0]
    assert (retrained["version"], retrained["samples"], retrained["run_id"]) == (
        "v4",
        600,
        "train-2",
    )
    assert (retrained["predictor_status"], retrained["predictor_version"]) == (
        "needs-labels",
        "v1",
    )
    assert retrained["predictor_auc"] == pytest.approx(metrics["auc"])
