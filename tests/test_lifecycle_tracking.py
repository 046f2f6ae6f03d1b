"""Optional MLflow tracking, read back from a local SQLite tracking store."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from conftest import Db
from fleet_helpers import asset_frame, fleet_config, write_fleet
from scoring_helpers import training_project, use_database

from ModelRegistry import ModelRegistry
from Orchestration import run_training
from Orchestration.fleet import run_fleet_training


def mlflow_warnings(test):
    """MLflow's own store uses an SQLAlchemy loader option deprecated in SQLAlchemy 2.1."""
    test = pytest.mark.filterwarnings("ignore::DeprecationWarning")(test)
    return pytest.mark.filterwarnings("ignore::FutureWarning")(test)


def _uri(folder: Path) -> str:
    return f"sqlite:///{folder / 'mlflow.db'}"


@mlflow_warnings
def test_a_training_run_is_logged_and_its_version_registered_with_the_aliases(
    sqlite_db: Db, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mlflow = pytest.importorskip("mlflow")
    uri = _uri(tmp_path)
    loaded = training_project(sqlite_db, tmp_path, monkeypatch, f"tracking.mlflow_uri={uri}")
    first = run_training(loaded)
    second = run_training(loaded)

    assert first.tracking["status"] == "ok"
    client = mlflow.MlflowClient(uri)
    experiment = client.get_experiment_by_name("mlbox")
    runs = client.search_runs([experiment.experiment_id], order_by=["attributes.start_time"])
    assert [r.info.run_name for r in runs] == ["v1", "v2"]
    assert [r.info.run_id for r in runs] == [first.tracking["run_id"], second.tracking["run_id"]]
    logged = runs[0].data
    assert logged.params["data.table"] == "s"
    assert logged.params["registry.promote"] == "gate"
    assert not any(key.startswith("tracking.") for key in logged.params)
    assert logged.metrics["rows"] == 400
    assert logged.metrics["a.r2"] == pytest.approx(first.metrics.set_index("axis").loc["a", "r2"])
    assert logged.tags["mlbox.version"] == "v1"
    assert logged.tags["mlbox.promoted"] == "true"
    artifacts = {a.path for a in client.list_artifacts(runs[0].info.run_id)}
    assert {"thresholds.json", "selection.json", "metrics.csv", "meta.yaml", "model"} <= artifacts
    # the artifacts lie beside the store, not in ./mlruns of the folder the run started in
    assert experiment.artifact_location == (tmp_path / "mlartifacts").as_uri()
    assert (tmp_path / "mlartifacts" / runs[0].info.run_id / "artifacts" / "meta.yaml").is_file()
    # the registered model follows the registry: v2 passed the gate, v1 is previous
    assert second.promotion["promoted"] is True
    assert str(client.get_model_version_by_alias("mlbox", "champion").version) == "2"
    assert str(client.get_model_version_by_alias("mlbox", "previous").version) == "1"
    assert client.get_model_version("mlbox", "2").tags["mlbox.version"] == "v2"


@mlflow_warnings
def test_a_fleet_run_is_one_parent_run_with_a_child_run_per_asset(
    sqlite_db: Db, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mlflow = pytest.importorskip("mlflow")
    use_database(sqlite_db, monkeypatch)
    write_fleet(sqlite_db, [asset_frame("r1", 60), asset_frame("r2", 60, seed=1)])
    uri = _uri(tmp_path)
    loaded = fleet_config(sqlite_db, tmp_path, "fleet.min_samples=40", f"tracking.mlflow_uri={uri}")

    report = run_fleet_training(loaded)

    assert report.tracking["status"] == "ok"
    client = mlflow.MlflowClient(uri)
    experiment = client.get_experiment_by_name("mlbox")
    runs = {r.info.run_name: r for r in client.search_runs([experiment.experiment_id])}
    parent = runs[f"fleet {report.run_id}"]
    assert parent.info.run_id == report.tracking["run_id"]
    assert parent.data.metrics == {"assets.trained": 2, "assets.needs-data": 0, "assets.failed": 0}
    assert parent.data.params["fleet.min_samples"] == "40"
    children = client.search_runs(
        [experiment.experiment_id], filter_string="tags.`mlbox.asset` = 'r2'"
    )
    assert [c.info.run_name for c in children] == ["r2 v1"]
    child = children[0].data
    assert child.tags["mlflow.parentRunId"] == parent.info.run_id
    assert child.params["families.a"] == "linear"
    assert child.metrics["samples"] == 60
    assert "thresholds.json" in {a.path for a in client.list_artifacts(children[0].info.run_id)}
    assert client.search_registered_models() == []  # per-asset registered models do not scale


def test_without_the_package_the_run_goes_on_and_says_missing_ml_extras(
    sqlite_db: Db, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setitem(sys.modules, "mlflow", None)  # `import mlflow` raises ImportError
    uri = "http://user:secret@tracking.example:5000"
    loaded = training_project(sqlite_db, tmp_path, monkeypatch, f"tracking.mlflow_uri={uri}")
    result = run_training(loaded)

    assert result.version == "v1"
    assert result.tracking["status"] == "missing-ml-extras"
    assert result.tracking["detail"].startswith(
        "tracking.mlflow_uri is set (http://***@tracking.example:5000) but MLflow is not "
        "installed; the run was not tracked. Install it with: pip install mlflow-skinny"
    )
    assert "secret" not in caplog.text
    meta = ModelRegistry(tmp_path / "registry").load("v1").meta
    assert meta["config"]["tracking"]["mlflow_uri"] == "http://***@tracking.example:5000"
    assert result.to_dict()["tracking"]["run_id"] is None


def test_tracking_is_off_by_default(sqlite_db: Db, tmp_path: Path, monkeypatch) -> None:
    loaded = training_project(sqlite_db, tmp_path, monkeypatch)
    assert loaded.config.tracking.mlflow_uri is None
    assert run_training(loaded).tracking == {
        "status": "off",
        "detail": "tracking.mlflow_uri is not set",
        "run_id": None,
        "model_version": None,
    }


@pytest.mark.parametrize(
    ("uri", "shown"),
    [
        ("http://user:pa/ss@mlflow:5000", "http://***@mlflow:5000"),
        (
            "https://mlflow/api?token=s3cret&workspace=a",
            "https://mlflow/api?token=***&workspace=***",
        ),
        ("http://mlflow:5000?password=s3cret", "http://mlflow:5000?password=***"),
        ("sqlite:///mlflow.db", "sqlite:///mlflow.db"),
    ],
)
def test_tracking_uris_are_shown_without_their_secrets(uri: str, shown: str) -> None:
    from Tracking import safe_uri

    assert safe_uri(uri) == shown
