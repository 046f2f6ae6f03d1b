"""End to end through the real entry points, into tmp_path, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
from clitools import make_project, run_cli
from conftest import PROJECT_ROOT, Db

from Database import DEMO_AXES, demo_data, float_columns, write_chunks
from ModelRegistry import ModelRegistry

ARTIFACTS = {
    "models.pkl",
    "models.json",
    "prep_stats.json",
    "thresholds.json",
    "selection.json",
    "metrics.csv",
    "drift.json",
    "meta.yaml",
}
DEMO_ROWS = 6000
TRAIN_END = "2026-01-05T02:31:00Z"  # ~80% of 6000 samples at 1.891 s


@pytest.fixture(scope="module")
def demo_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    config = make_project(tmp_path_factory.mktemp("e2e"), f"data: {{train_end: '{TRAIN_END}'}}\n")
    built = run_cli("orchestrate.py", "demo-db", "--rows", str(DEMO_ROWS), config=config)
    assert built.code == 0, built.stderr
    return config


def test_main_registers_v1_then_v2_with_latest(demo_project: Path, tmp_path: Path) -> None:
    root = demo_project.parent / "registry"
    first = run_cli("main.py", config=demo_project, cwd=tmp_path)  # run from another folder
    assert first.code == 0, first.stderr
    assert list(tmp_path.iterdir()) == []  # every path resolved against the config's folder
    meta = ModelRegistry(root).load("v1").meta
    assert meta["database"]["source"] == "demo"
    assert first.stdout.startswith(
        f"registered v1 (run {meta['run_id']}) from {meta['data']['rows']} rows of the embedded "
        "DEMO database (synthetic data, not your machines)"
    )
    assert first.stdout.splitlines()[2].split() == [
        "axis",
        "family",
        "n",
        "R2",
        "MAE",
        "RMSE",
        "MaxC_low",
        "MinC_low",
        "MinC",
        "MaxC",
        "T_long",
        "T_short",
        "events/day",
    ]
    assert re.search(
        r"\nexpected false alert events per day \(on held-out data\): [0-9.]+\n", first.stdout
    )
    assert f"artifacts: {root / 'v1'}" in first.stdout
    assert {p.name for p in (root / "v1").iterdir()} >= ARTIFACTS
    assert len(list((root / "v1" / "plots").glob("*.png"))) == 16
    assert (root / "latest").resolve() == (root / "v1").resolve()

    thresholds = json.loads((root / "v1" / "thresholds.json").read_text())
    assert list(thresholds) == [*DEMO_AXES, "*"]  # the axes, then the machine channel
    assert {t["dt_seconds"] for t in thresholds.values()} == {1.891}
    assert all(t["T_long_steps"] >= 3 and t["T_short_steps"] >= 2 for t in thresholds.values())
    for axis in DEMO_AXES:  # both sides, out of sample, one multiplier for every axis
        record = thresholds[axis]
        assert (record["side"], record["calibration"], record["method"]) == (
            "both",
            "holdout",
            "pooled",
        )
        assert record["MinC_low"] < record["center"] < record["MinC"] < record["MaxC"]
    selection = json.loads((root / "v1" / "selection.json").read_text())
    assert selection["criterion"] == "detectable-shift"
    assert set(selection["chosen"]) == set(DEMO_AXES)
    assert meta["families"] == {a: selection["chosen"][a]["family"] for a in DEMO_AXES}
    metrics = pd.read_csv(root / "v1" / "metrics.csv")
    assert metrics["axis"].tolist() == list(DEMO_AXES)

    second = run_cli("main.py", config=demo_project)
    assert "registered v2" in second.stdout
    assert (root / "latest").resolve() == (root / "v2").resolve()
    assert [v.version for v in ModelRegistry(root).list_versions()] == ["v1", "v2"]


def test_train_json_and_registry_commands(demo_project: Path) -> None:
    run = run_cli("orchestrate.py", "train", "--json", config=demo_project)
    assert run.code == 0, run.stderr
    payload = run.json()
    assert payload["status"]["code"] == "ok"
    assert set(payload) >= {"version", "artifact_dir", "metrics", "thresholds", "timings"}
    assert payload["data_source"] == "demo"
    assert list(payload["timings"]) == [
        "extract",
        "analyze",
        "prepare",
        "select",
        "train",
        "evaluate",
        "threshold",
        "plot",
        "register",
        "promote",
    ]
    listing = run_cli("orchestrate.py", "registry", "list", config=demo_project)
    assert f"{payload['version']} (latest)" in listing.stdout
    shown = run_cli("orchestrate.py", "registry", "show", "--json", config=demo_project).json()
    assert shown["version"] == payload["version"]
    assert shown["thresholds"] == payload["thresholds"]


def test_a_failing_step_registers_nothing(tmp_path: Path, demo_project: Path) -> None:
    config = make_project(
        tmp_path,
        "thresholds: {pooling: axis, use_mad_fallback: false, min_pos_for_percentile: 1000000}\n",
    )
    (tmp_path / "demo.sqlite").write_bytes((demo_project.parent / "demo.sqlite").read_bytes())
    run = run_cli("main.py", "--json", config=config)
    assert run.code == 3
    assert run.json()["status"]["code"] == "invalid-input"
    assert "use_mad_fallback" in run.json()["status"]["detail"]
    assert not list((tmp_path / "registry").glob("v*"))


def _children(pid: int) -> list[str]:
    """Process ids of the children of ``pid``, started by any of its threads."""
    return [
        child
        for task in Path(f"/proc/{pid}/task").iterdir()
        for child in (task / "children").read_text().split()
    ]


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="needs Linux /proc")
def test_sigterm_in_the_plot_step_leaves_no_traceback_and_no_process(
    tmp_path: Path, demo_project: Path
) -> None:
    config = make_project(tmp_path, f"data: {{train_end: '{TRAIN_END}'}}\n")
    (tmp_path / "demo.sqlite").write_bytes((demo_project.parent / "demo.sqlite").read_bytes())
    (tmp_path / "plots").mkdir()
    # The first plot file is a FIFO that nobody reads: writing it blocks, so the run is still
    # in the plot step whenever the signal comes.
    os.mkfifo(tmp_path / "plots" / f"{DEMO_AXES[0]}_fit.png")
    command = [sys.executable, str(PROJECT_ROOT / "main.py"), "--config", str(config)]
    env = {name: value for name, value in os.environ.items() if name != "DB_URL"}
    with subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path
    ) as process:
        assert process.stderr is not None
        log = []
        for line in process.stderr:  # synchronised on the log, not on time
            log.append(line)
            if "step plot: start" in line:
                break
        else:
            pytest.fail(f"the run ended before its plot step:\n{''.join(log)}")
        children = _children(process.pid)
        process.send_signal(signal.SIGTERM)
        log.append(process.stderr.read())
    assert process.returncode == -signal.SIGTERM
    assert children == []  # no helper process that could outlive the run
    assert "Traceback" not in "".join(log)


def test_scoring_the_last_20_percent_finds_the_injected_anomalies(
    tmp_path: Path, demo_project: Path
) -> None:
    config = make_project(
        tmp_path,
        f"data: {{train_end: '{TRAIN_END}'}}\nlabels: {{table: demo_injected_anomalies}}\n",
    )
    (tmp_path / "demo.sqlite").write_bytes((demo_project.parent / "demo.sqlite").read_bytes())
    trained = run_cli("main.py", "--json", config=config)
    assert trained.code == 0, trained.stderr
    scored = run_cli(
        "orchestrate.py", "score", "--json", "--output", str(tmp_path / "flags.csv"), config=config
    )
    assert scored.code == 0, scored.stderr
    flags = pd.read_csv(tmp_path / "flags.csv")
    samples = demo_data(DEMO_ROWS).samples
    after = samples[samples["ts"] >= pd.Timestamp(TRAIN_END)]
    assert len(flags) == len(after) == scored.json()["samples"]  # one flag row per sample
    assert flags["ts"].iloc[-1] == after["ts"].iloc[-1].strftime("%Y-%m-%dT%H:%M:%S.%f%z")
    assert {"machine_score", "machine_level"} <= set(flags.columns)

    evaluated = run_cli("orchestrate.py", "evaluate", "--json", config=config)
    assert evaluated.code == 0, evaluated.stderr
    report = evaluated.json()["evaluation"]
    labels = demo_data(DEMO_ROWS).labels
    assert report["labels"] == int((labels["start_ts"] >= pd.Timestamp(TRAIN_END)).sum()) == 22
    # Every injected anomaly is found, and nothing else raises an event.
    assert (report["event_recall"], report["false_events"]) == (1.0, 0)
    assert report["false_alarm_rate"] == 0.0
    assert trained.json()["expected_events_per_day"] == 0.0

    again = run_cli("orchestrate.py", "score", "--json", "--start", TRAIN_END, config=config)
    assert again.json()["events_written"]["inserted"] == 0
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'demo.sqlite'}")
    with engine.connect() as conn:
        total = conn.execute(sa.text("SELECT count(*) FROM anomaly_events")).scalar()
    engine.dispose()
    assert total == sum(sum(c.values()) for c in scored.json()["counts"].values())


@pytest.mark.postgres
def test_overlapping_runs_on_postgres_never_leak_the_password(pg_db: Db, tmp_path: Path) -> None:
    secret = pg_db.target.url.password or "Sup3r-Secret-pw"  # trust auth ignores a made-up one
    url = pg_db.target.url.set(password=secret).render_as_string(hide_password=False)
    samples = demo_data(4000).samples
    columns = {"ts": sa.DateTime(timezone=True), **float_columns(DEMO_AXES)}
    write_chunks(pg_db.engine, pg_db.target, pg_db.table("robot"), columns, [samples])
    config = make_project(tmp_path, f"data: {{table: {pg_db.table('robot')}}}\n")

    env = {**__import__("os").environ, "DB_URL": url}
    runs = [
        subprocess.Popen(
            [
                sys.executable,
                str(PROJECT_ROOT / "main.py"),
                "--config",
                str(config),
                "--log-file",
                str(tmp_path / f"run{i}.log"),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=tmp_path,
        )
        for i in range(2)
    ]
    outputs = [run.communicate(timeout=300) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs

    registry = ModelRegistry(tmp_path / "registry")
    assert sorted(v.version for v in registry.list_versions()) == ["v1", "v2"]
    for version in ("v1", "v2"):
        loaded = registry.load(version)  # verifies every checksum
        assert loaded.meta["database"]["dialect"] == "postgresql"
        assert loaded.meta["database"]["source"] == "database"
    assert registry.resolve("latest").name in {"v1", "v2"}
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.suffix == ".log" for p in written) and any(p.name == "meta.yaml" for p in written)
    for path in written:
        assert secret.encode() not in path.read_bytes(), path
    for stdout, stderr in outputs:
        assert secret not in stdout + stderr
        assert "DEMO" not in stdout and "embedded demo" not in stderr


def test_an_existing_explicit_tag_is_refused_before_any_work(
    tmp_path: Path, demo_project: Path
) -> None:
    config = make_project(tmp_path)
    (tmp_path / "demo.sqlite").write_bytes((demo_project.parent / "demo.sqlite").read_bytes())
    assert run_cli("main.py", "--set", "registry.version_tag=prod-1", config=config).code == 0
    before = sorted(p.stat().st_mtime_ns for p in (tmp_path / "plots").iterdir())
    again = run_cli("main.py", "--json", "--set", "registry.version_tag=prod-1", config=config)
    assert again.code == 2
    assert again.json()["status"]["code"] == "invalid-config"
    assert "'prod-1' already exists" in again.json()["status"]["detail"]
    assert "step extract" not in again.stderr  # refused before any work
    assert sorted(p.stat().st_mtime_ns for p in (tmp_path / "plots").iterdir()) == before
    assert [v.version for v in ModelRegistry(tmp_path / "registry").list_versions()] == ["prod-1"]
