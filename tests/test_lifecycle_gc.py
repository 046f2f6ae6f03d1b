"""Retention (``registry gc``): what is removed, what never is, and a publish running meanwhile."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from clitools import make_project, run_cli
from conftest import PROJECT_ROOT, Db
from scoring_helpers import (
    T0,
    append_samples,
    loaded_config,
    publish_linear_version,
    use_database,
)

from ModelRegistry import ModelRegistry
from Orchestration.retention import collect_garbage
from Orchestration.scoring import run_scoring

WORKER = PROJECT_ROOT / "tests" / "registry_helpers" / "publish_worker.py"


def _lineage(root: Path, versions: int) -> ModelRegistry:
    for _ in range(versions):
        publish_linear_version(root, ["a", "b"])
    return ModelRegistry(root)


def _versions(registry: ModelRegistry) -> list[str]:
    return [v.version for v in registry.list_versions()]


def test_gc_never_removes_latest_champion_previous_pinned_or_in_use(tmp_path: Path) -> None:
    registry = _lineage(tmp_path / "registry", 7)
    registry.promote("v2")
    registry.promote("v3")  # champion v3, previous v2
    registry.pin("v1")
    registry.record_decision("v5", {"promoted": False})
    size = sum(f.stat().st_size for f in (registry.root_dir / "v5").rglob("*") if f.is_file())

    planned = registry.collect_garbage(keep=1, in_use={"v4"}, dry_run=True)
    assert [v.version for v in planned] == ["v5", "v6"]
    assert _versions(registry) == [f"v{n}" for n in range(1, 8)]  # a dry run removes nothing

    removed = registry.collect_garbage(keep=1, in_use={"v4"})

    assert [(v.version, v.bytes) for v in removed] == [("v5", size), ("v6", size)]
    assert _versions(registry) == ["v1", "v2", "v3", "v4", "v7"]
    assert registry.aliases().to_dict() == {"champion": "v3", "previous": "v2", "pins": ["v1"]}
    assert not (registry.root_dir / "aliases" / "decisions" / "v5.json").exists()
    assert registry.resolve("latest").name == "v7"
    assert list((registry.root_dir / ".staging").iterdir()) == []
    for version in _versions(registry):
        registry.load(version)  # every kept version still verifies


def test_gc_keeps_the_newest_n_and_versions_younger_than_older_than(tmp_path: Path) -> None:
    registry = _lineage(tmp_path / "registry", 4)
    assert registry.collect_garbage(keep=2, older_than=dt.timedelta(days=1)) == []
    assert [v.version for v in registry.collect_garbage(keep=2)] == ["v1", "v2"]
    assert _versions(registry) == ["v3", "v4"]
    assert [v.version for v in registry.collect_garbage(keep=0)] == ["v3"]
    assert _versions(registry) == ["v4"]  # latest, whatever --keep
    with pytest.raises(ValueError, match="keep must be a whole number >= 0, got -1"):
        registry.collect_garbage(keep=-1)


def test_gc_keeps_versions_whose_events_are_stored(
    sqlite_db: Db, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_database(sqlite_db, monkeypatch)
    registry = _lineage(tmp_path / "registry", 3)
    append_samples(sqlite_db, "s", {"a": [0.0, 1.5, 1.5, 0.0], "b": [0.0] * 4})
    loaded = loaded_config(sqlite_db, tmp_path)
    run_scoring(loaded, version="v1", start=T0.to_pydatetime())  # stores an event of v1

    payload, text = collect_garbage(loaded, keep=0, dry_run=True)
    assert payload == {
        "dry_run": True,
        "removed": {"": [{"version": "v2", "bytes": payload["bytes"]}]},
        "versions": 1,
        "bytes": payload["bytes"],
    }
    assert text.splitlines()[0].startswith("would remove v2 (created ")
    assert text.splitlines()[-1] == f"would remove 1 version(s), {payload['bytes'] / 1e3:.1f} kB"

    # events that ended before the retention window no longer protect their version
    payload, _ = collect_garbage(loaded, keep=0, older_than=dt.timedelta(0))
    assert [v["version"] for v in payload["removed"][""]] == ["v1", "v2"]
    assert _versions(registry) == ["v3"]


def test_cli_gc_and_its_bad_input(tmp_path: Path) -> None:
    config = make_project(tmp_path)
    _lineage(tmp_path / "registry", 3)
    run = run_cli("orchestrate.py", "registry", "gc", "--keep", "1", "--json", config=config)
    assert run.code == 0, run.stderr
    assert [v["version"] for v in run.json()["removed"][""]] == ["v1", "v2"]
    assert run.json()["status"]["detail"].startswith("removed 2 version(s), ")
    for bad, message in (
        (["--keep", "-1"], "'-1' is not a whole number >= 0"),
        (["--keep", "1", "--older-than", "3x"], "'3x' is not a duration"),
    ):
        failed = run_cli("orchestrate.py", "registry", "gc", *bad, config=config)
        assert failed.code == 2
        assert message in failed.stderr
    assert [v.version for v in ModelRegistry(tmp_path / "registry").list_versions()] == ["v3"]


def test_gc_while_a_publish_is_in_progress_leaves_it_whole(tmp_path: Path) -> None:
    registry = _lineage(tmp_path / "registry", 3)
    ready, go = tmp_path / "ready", tmp_path / "go"
    options = ["--ready", str(ready), "--wait-for", str(go)]
    worker = subprocess.Popen(
        [sys.executable, str(WORKER), str(registry.root_dir), "run-x", *options],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)},
    )
    deadline = time.monotonic() + 120
    while not ready.exists():  # the worker's artifacts sit in staging
        assert worker.poll() is None, worker.communicate()
        assert time.monotonic() < deadline, "the publisher never reached staging"
        time.sleep(0.05)

    removed = registry.collect_garbage(keep=0)
    go.touch()
    stdout, stderr = worker.communicate(timeout=120)

    assert worker.returncode == 0, stderr
    assert [v.version for v in removed] == ["v1", "v2"]
    assert json.loads(stdout)["version"] == "v4"
    assert _versions(registry) == ["v3", "v4"]
    assert registry.load("latest").meta["run_id"] == "run-x"  # verifies every file
    assert list((registry.root_dir / ".staging").iterdir()) == []
