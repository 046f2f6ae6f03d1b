"""``orchestrate.py schedule``: runs training and scoring on a (shortened) timetable, shares
the cron lock files, logs each run's status and stops cleanly on SIGTERM.

No timing is asserted: the test waits for log lines with generous deadlines.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from clitools import make_project
from conftest import PROJECT_ROOT, Db
from filelock import FileLock
from scoring_helpers import training_project

from ModelRegistry import ModelRegistry
from Orchestration import load_config
from Orchestration.config import ConfigError

DEADLINE_S = 300.0


def _wait_for(log: Path, line: str, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while line not in (log.read_text() if log.exists() else ""):
        if process.poll() is not None:
            pytest.fail(f"schedule exited early ({process.returncode}): {process.communicate()}")
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"no {line!r} in the log within {DEADLINE_S} s:\n{log.read_text()}")
        time.sleep(0.1)


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="POSIX signals")
def test_schedule_fires_training_and_scoring_shares_the_locks_and_stops_on_sigterm(
    sqlite_db: Db, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = training_project(sqlite_db, tmp_path, monkeypatch).source
    log, score_lock = tmp_path / "schedule.log", tmp_path / "score.lock"
    options = [
        "--set=data.table=s",
        "--set=data.axes=[a, b]",
        "--set=plots.enabled=false",
        "--set=scoring.stale_after=null",
        "--set=schedule.train=every 1s",
        "--set=schedule.score=every 1s",
        f"--set=schedule.train_lock={tmp_path / 'train.lock'}",
        f"--set=schedule.score_lock={score_lock}",
        f"--log-file={log}",
    ]
    held = FileLock(score_lock)
    held.acquire()  # a score run from cron is still going
    command = [sys.executable, str(PROJECT_ROOT / "orchestrate.py"), "--config", config]
    process = subprocess.Popen(
        [*command, *options, "schedule"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "DB_URL": sqlite_db.url},
        cwd=tmp_path,
    )
    try:
        _wait_for(log, "schedule: score skipped: ", process)
        held.release()
        _wait_for(log, "schedule: train finished: exit 0 (ok)", process)
        _wait_for(log, "schedule: score finished: exit 0 (ok)", process)
    finally:
        held.release()
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=DEADLINE_S)

    assert process.returncode == 0, stderr
    text = log.read_text()
    assert f"score skipped: {score_lock} is held by a run still going" in text
    assert text.rstrip().endswith("schedule: stopped")
    assert "registered v1" in stdout
    versions = ModelRegistry(tmp_path / "registry").list_versions()
    assert versions and all(ModelRegistry(tmp_path / "registry").load(v.version) for v in versions)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("schedule.train=61 2 * * *", r"'61 2 \* \* \*' is not a crontab schedule"),
        ("schedule.score=every soon", r"'every soon': 'every' needs a positive duration"),
        ("schedule.timezone=Mars/Base", r"'Mars/Base' is not a known time zone"),
    ],
)
def test_bad_schedules_are_refused_with_the_fix(tmp_path: Path, override: str, message: str):
    with pytest.raises(ConfigError, match=message):
        load_config(make_project(tmp_path), [override])
