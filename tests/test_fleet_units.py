"""Small parts of fleet execution: batching, progress lines, configuration, unreachable Dask."""

from __future__ import annotations

import dataclasses
import gc
import io
import logging
import os
import socket
from pathlib import Path

import pytest
from fleet_helpers import fleet_config
from pool_tasks import die, freeze_counts, worker_pid

import Orchestration.fleet as fleet
from Fleet import (
    AssetNameError,
    AssetOutcome,
    ExecutorError,
    FleetConfig,
    Progress,
    asset_folder,
    batches_of,
    executor,
)
from Fleet.executor import TaskPool, run_tasks
from Orchestration import ConfigError, load_config
from Orchestration.fleet import _check_folders


@pytest.mark.parametrize(
    ("items", "workers", "batch", "sizes"),
    [
        (10, 2, None, [2, 2, 2, 2, 2]),  # about four tasks per worker
        (1000, 2, None, [50] * 20),  # at most 50 assets per task
        (3, 2, None, [1, 1, 1]),
        (7, 1, 3, [3, 3, 1]),  # fleet.batch_assets
        (0, 2, None, []),
    ],
)
def test_assets_are_cut_into_batches(
    items: int, workers: int, batch: int | None, sizes: list[int]
) -> None:
    config = FleetConfig(batch_assets=batch)
    batches = batches_of(list(range(items)), config, workers)
    assert [len(b) for b in batches] == sizes
    assert [a for b in batches for a in b] == list(range(items))


@pytest.mark.parametrize(
    ("items", "workers", "batch", "sizes"),
    [
        (8, 2, None, [4, 4]),  # the families' vote: one task per worker
        (7, 2, None, [4, 3]),
        (8, 1, None, [8]),
        (3, 4, None, [1, 1, 1]),
        (8, 2, 3, [3, 3, 2]),  # fleet.batch_assets still wins
    ],
)
def test_batches_of_one_task_per_worker(items, workers, batch, sizes) -> None:
    config = FleetConfig(batch_assets=batch)
    batches = batches_of(list(range(items)), config, workers, tasks_per_worker=1)
    assert [len(b) for b in batches] == sizes
    assert [a for b in batches for a in b] == list(range(items))


def test_progress_without_a_terminal_logs_each_tenth(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="Fleet.progress")
    with Progress(20, "training", stream=io.StringIO()) as progress:
        for _ in range(10):
            progress.update(2)
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [f"training: {done} of 20 assets done" for done in range(2, 21, 2)]


def test_ids_differing_only_in_case_are_refused() -> None:
    _check_folders(["robot_a", "robot_b"])
    with pytest.raises(AssetNameError, match="'Robot_A' and 'robot_a' differ only in letter"):
        _check_folders(["Robot_A", "robot_a"])
    with pytest.raises(AssetNameError, match="an asset id is empty"):
        asset_folder("")
    with pytest.raises(AssetNameError, match="more than the 200 allowed"):
        asset_folder("/" * 70)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("fleet.executor=dask", "fleet.executor dask needs fleet.scheduler_address"),
        ("fleet.scheduler_address=scheduler:8786", "must be a Dask scheduler address like tcp"),
        ("fleet.min_samples=1", "fleet.min_samples: must be at least 2, got 1"),
        ("data.assets=[]", "data.assets: must be 'all' or a non-empty list of asset ids"),
        ("data.assets=[a, a]", "data.assets: lists an asset twice"),
        ("data.train_start=-3x", "'-3x' is not a relative time; write e.g. -30d"),
        ("scoring.stale_after=0s", "scoring.stale_after: must be a positive duration"),
        ("data.asset_col=a;b", "data.asset_col: column name 'a;b' is not a safe SQL identifier"),
    ],
)
def test_bad_fleet_settings_are_named(override: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace("[", r"\[")):
        load_config(None, [override])


@pytest.mark.slow
def test_an_unreachable_scheduler_is_one_clear_error() -> None:
    """Distributed retries a refused connection for fleet.scheduler_timeout_s (30 s by
    default; 2 here) before giving up."""
    pytest.importorskip("distributed")
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = FleetConfig(
        executor="dask", scheduler_address=f"tcp://127.0.0.1:{port}", scheduler_timeout_s=2
    )
    with (
        Progress(1, "training", stream=io.StringIO()) as progress,
        pytest.raises(
            ExecutorError,
            match=rf"scheduler at fleet.scheduler_address tcp://127.0.0.1:{port} "
            r"cannot be reached within fleet.scheduler_timeout_s 2 s .*start it with "
            r"`dask scheduler`",
        ),
    ):
        run_tasks(str, None, [[1]], config=config, progress=progress, on_error=lambda b, e: [])


def test_local_pool_workers_freeze_what_the_fork_server_preloaded() -> None:
    # Their garbage collections then walk only what the tasks create; this process is left
    # as it is.
    before = gc.get_freeze_count()
    with Progress(2, "tasks", stream=io.StringIO()) as progress:
        counts = run_tasks(
            freeze_counts,
            None,
            [[1], [2]],
            config=FleetConfig(workers=2),
            progress=progress,
            on_error=lambda batch, exc: pytest.fail(f"the task failed: {exc}"),
        )

    assert len(counts) == 2
    assert min(counts) > 10_000  # at least the interpreter's own modules' objects
    assert gc.get_freeze_count() == before


def test_a_task_pool_serves_several_runs_with_the_same_workers() -> None:
    """A fleet's family vote and its training share one pool: the second run's tasks go to
    the workers the first one started, none other, and they are gone after the block."""
    on_error = lambda batch, exc: pytest.fail(f"the task failed: {exc}")  # noqa: E731
    with TaskPool(FleetConfig(workers=2)) as pool:
        with Progress(2, "vote", stream=io.StringIO()) as progress:
            first = pool.run(worker_pid, None, [[1], [2]], progress=progress, on_error=on_error)
        with Progress(8, "train", stream=io.StringIO()) as progress:
            second = pool.run(
                worker_pid, None, [[k] for k in range(8)], progress=progress, on_error=on_error
            )
    assert os.getpid() not in first
    # Two pools would have started up to four workers; one has at most fleet.workers.
    assert len(first) == 2 and len(second) == 8
    assert 1 <= len(set(first) | set(second)) <= 2
    for pid in set(first) | set(second):
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_a_pool_a_dead_worker_broke_is_replaced_for_the_next_run() -> None:
    """A worker killed during the family vote fails the vote's tasks (reported), and the
    training that follows on the same TaskPool gets a new pool instead of a crash."""
    with TaskPool(FleetConfig(workers=2)) as pool:
        with Progress(2, "vote", stream=io.StringIO()) as progress:  # two tasks: a pool
            vote = pool.run(
                die, None, [[1], [2]], progress=progress, on_error=lambda b, e: [type(e).__name__]
            )
        with Progress(4, "train", stream=io.StringIO()) as progress:
            trained = pool.run(
                worker_pid,
                None,
                [[k] for k in range(4)],
                progress=progress,
                on_error=lambda b, e: pytest.fail(f"the task failed: {e}"),
            )
    assert vote == ["BrokenProcessPool"] * 2
    assert len(trained) == 4 and os.getpid() not in trained


def test_a_local_pool_worker_keeps_its_database_for_the_next_task_of_the_run(
    sqlite_db, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A local pool worker's tasks of one run share one engine and fast-path connections; a
    new run, or a task that raises, closes them; elsewhere every task opens its own."""
    monkeypatch.setenv("DB_URL", sqlite_db.url)
    task = fleet._TrainTask(fleet_config(sqlite_db, tmp_path), "run-1", (), threads=1)
    monkeypatch.setattr(executor, "_IN_LOCAL_POOL", True)
    try:
        with fleet._task_database(task) as first:
            pass
        with fleet._task_database(task) as second:
            pass
        assert second[0] is first[0] and second[1] is first[1] is not None
        other = dataclasses.replace(task, run_id="run-2")
        with fleet._task_database(other) as third:
            assert third[0] is not first[0]
        with pytest.raises(RuntimeError, match="a task failed"), fleet._task_database(other):
            raise RuntimeError("a task failed")
        assert fleet._WORKER_DATABASE == []
        monkeypatch.setattr(executor, "_IN_LOCAL_POOL", False)
        with fleet._task_database(task) as own:
            assert own[1] is None and own[0] is not first[0]
        assert fleet._WORKER_DATABASE == []
    finally:
        fleet._close_worker_database()


def test_an_outcome_as_a_dict_is_asdict_s_and_its_own_copy() -> None:
    outcome = AssetOutcome(
        asset="r1",
        status="trained",
        samples=100,
        version="v2",
        families={"a": "ar"},
        thresholds={"a": {"MinC": 1.5, "MaxC": None}},
        attention=["a MinC 1 -> 1.5 (+50%)"],
        promotion={"promoted": False, "figures": {"alarms": [1, 2]}},
        plots=2,
    )
    plain = outcome.to_dict()
    assert plain == dataclasses.asdict(outcome)
    assert list(plain) == [field.name for field in dataclasses.fields(AssetOutcome)]
    plain["thresholds"]["a"]["MinC"] = 0.0
    plain["promotion"]["figures"]["alarms"].append(3)
    plain["families"]["a"] = "constant"
    plain["attention"].clear()
    assert outcome == dataclasses.replace(outcome)  # untouched
    assert outcome.thresholds["a"]["MinC"] == 1.5 and outcome.families == {"a": "ar"}
    assert outcome.promotion == {"promoted": False, "figures": {"alarms": [1, 2]}}
    assert outcome.attention == ["a MinC 1 -> 1.5 (+50%)"]
    assert AssetOutcome("r2", "failed", reason="x").to_dict()["promotion"] is None
