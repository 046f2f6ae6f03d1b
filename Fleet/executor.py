"""Running one task per batch of assets on a local process pool or an existing Dask cluster.

Tasks get only small arguments (the validated config and asset ids) and return small
summaries; each reads its own data from the database and writes its own results, so no window
travels through a pool's pipes or the Dask scheduler.

Local pool: :class:`concurrent.futures.ProcessPoolExecutor` with the ``forkserver`` start
method, preloading the task's module in the server once: each worker is then forked from a
process that has already imported pandas, SQLAlchemy and the pipeline (a ``spawn``-ed worker
would import them again, and the main script with them), and never from this process, whose
threads (database drivers, the progress bar) a plain ``fork`` would copy mid-flight.
"""

from __future__ import annotations

import gc
import logging
import math
import multiprocessing
import os
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

from .config import FleetConfig
from .progress import Progress

__all__ = [
    "ExecutorError",
    "TaskPool",
    "batches_of",
    "in_local_pool",
    "pool_size",
    "run_tasks",
    "runs_in_process",
]

logger = logging.getLogger(__name__)

Item = TypeVar("Item")
Result = TypeVar("Result")

_MAX_BATCH = 50


class ExecutorError(RuntimeError):
    """The Dask cluster cannot be reached, or its workers cannot run the pipeline's tasks."""


_TASKS_PER_WORKER = 4


def pool_size(config: FleetConfig) -> int:
    """Worker processes of the local executor: ``fleet.workers``, or one per core."""
    return config.workers or os.cpu_count() or 1


def batches_of(
    items: Sequence[Item],
    config: FleetConfig,
    workers: int,
    tasks_per_worker: int = _TASKS_PER_WORKER,
) -> list[list[Item]]:
    """``items`` cut into tasks: ``fleet.batch_assets`` each, or about ``tasks_per_worker``
    (default four) tasks per worker.

    More tasks than workers keep every worker busy to the end when assets take unequal time;
    batches spare the per-task overhead (database connections, the result's round trip).
    """
    if not items:
        return []
    size = config.batch_assets or max(
        1, min(_MAX_BATCH, math.ceil(len(items) / (workers * tasks_per_worker)))
    )
    return [list(items[i : i + size]) for i in range(0, len(items), size)]


def run_tasks(
    task: Callable[[Any, list[Item]], list[Result]],
    shared: Any,
    batches: list[list[Item]],
    *,
    config: FleetConfig,
    progress: Progress,
    on_error: Callable[[list[Item], BaseException], list[Result]],
    environment: Mapping[str, str | None] | None = None,
) -> list[Result]:
    """Run ``task(shared, batch)`` for every batch; the results in the order of ``batches``.

    Args:
        task: a module-level function (it is pickled by name), returning one result per item.
        shared: the argument every task gets (the config).
        batches: the items, cut into tasks.
        config: the ``fleet`` section (executor, workers, scheduler address).
        progress: told about every finished batch.
        on_error: the results of a batch whose task could not run to its end (a worker
            died, the cluster lost it): one per item, saying why.
        environment: variables the local pool's workers get as this process has them now
            (None: unset), e.g. the database URL. The fork server they start from keeps the
            environment of its own start, which can be older. Dask workers keep their own.

    Raises:
        ExecutorError: the Dask scheduler cannot be reached, or its workers cannot take the
            tasks.
    """
    with TaskPool(config, environment) as pool:
        return pool.run(task, shared, batches, progress=progress, on_error=on_error)


class TaskPool:
    """Where :func:`run_tasks` runs its tasks, kept for several calls of :meth:`run`: the
    phases of one run (a fleet's family vote, then its training) share the local pool's
    workers (their start, their database connections) or the Dask client. The pool or the
    client is opened by the first :meth:`run` that needs it and closed when the ``with``
    block ends.

    Args:
        config: the ``fleet`` section (executor, workers, scheduler address).
        environment: as for :func:`run_tasks`.
    """

    def __init__(
        self, config: FleetConfig, environment: Mapping[str, str | None] | None = None
    ) -> None:
        self.config = config
        self.environment = dict(environment or {})
        self._pool: ProcessPoolExecutor | None = None
        self._client: Any = None

    def __enter__(self) -> TaskPool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Shut the local pool down (waiting for its workers) and close the Dask client."""
        pool, client, self._pool, self._client = self._pool, self._client, None, None
        try:
            if pool is not None:
                pool.shutdown(wait=True)
        finally:
            if client is not None:
                client.close()

    def run(
        self,
        task: Callable[[Any, list[Item]], list[Result]],
        shared: Any,
        batches: list[list[Item]],
        *,
        progress: Progress,
        on_error: Callable[[list[Item], BaseException], list[Result]],
    ) -> list[Result]:
        """:func:`run_tasks` of ``task`` on this pool."""
        results: list[list[Result] | None] = [None] * len(batches)
        if self.config.executor == "dask":
            client, address = self._dask(), self.config.scheduler_address
            _run_on_dask(client, address, task, shared, batches, progress, on_error, results)
        elif runs_in_process(self.config, len(batches)):
            for index, batch in enumerate(batches):
                results[index] = task(shared, batch)
                progress.update(len(batch))
        else:
            futures = self._submit(task, shared, batches)
            for future in as_completed(futures):
                index = futures[future]
                results[index] = _result(future, batches[index], on_error)
                progress.update(len(batches[index]))
        return [result for batch in results for result in batch or []]

    def _submit(
        self,
        task: Callable[[Any, list[Item]], list[Result]],
        shared: Any,
        batches: list[list[Item]],
    ) -> dict[Future[list[Result]], int]:
        """Every batch submitted to the local pool; a pool that a dead worker broke in an
        earlier run (its tasks were reported failed then) is replaced by a new one."""

        def submitted(pool: ProcessPoolExecutor) -> dict[Future[list[Result]], int]:
            return {pool.submit(task, shared, batch): index for index, batch in enumerate(batches)}

        try:
            return submitted(self._local(task.__module__))
        except BrokenProcessPool:
            logger.warning("a worker of the pool died in an earlier run: starting a new pool")
            broken, self._pool = self._pool, None
            if broken is not None:
                # Waiting lets the broken pool's manager thread finish closing its pipes
                # before the new pool opens its own: without the wait, a late close could
                # hit a new pipe that reused the number ("Bad file descriptor" when the new
                # worker starts). Its workers are dead or killed: the wait is short.
                broken.shutdown(wait=True)
            return submitted(self._local(task.__module__))

    def _local(self, module: str) -> ProcessPoolExecutor:
        """The local pool; its workers start as tasks arrive (at most ``pool_size``), forked
        from a server that preloads ``module`` (unless one already runs)."""
        if self._pool is None:
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload([module])
            self._pool = ProcessPoolExecutor(
                max_workers=pool_size(self.config),
                mp_context=context,
                initializer=_set_environment,
                initargs=(self.environment,),
            )
        return self._pool

    def _dask(self) -> Any:
        """The Dask client of ``fleet.scheduler_address``.

        Raises:
            ExecutorError: the scheduler cannot be reached.
        """
        if self._client is None:
            from distributed import Client

            address = self.config.scheduler_address
            assert address is not None
            timeout = self.config.scheduler_timeout_s
            try:
                self._client = Client(address, timeout=f"{timeout}s")
            except (OSError, TimeoutError) as exc:
                raise ExecutorError(
                    f"the Dask scheduler at fleet.scheduler_address {address} cannot be reached "
                    f"within fleet.scheduler_timeout_s {timeout:g} s ({exc}); "
                    f"start it with `dask scheduler` (and workers with `dask worker {address}`)"
                    ", or set fleet.executor: local"
                ) from None
        return self._client


_IN_LOCAL_POOL = False


def in_local_pool() -> bool:
    """Whether this process is a worker of :func:`run_tasks`' local pool: it lives for one
    :func:`run_tasks` call (or one :class:`TaskPool` block), so its tasks may keep what they
    open (database connections) for the next task, closed when the worker exits."""
    return _IN_LOCAL_POOL


def _set_environment(variables: Mapping[str, str | None]) -> None:
    """Pool worker start-up: take over the parent's current values of ``variables``, and move
    what the fork server preloaded (the modules of pandas, SQLAlchemy, the pipeline: objects
    that live as long as the worker) into the garbage collector's permanent generation
    (``gc.freeze``): its full collections then walk only what the tasks create (~4 ms less per
    collection, ~2 ms of CPU per asset)."""
    global _IN_LOCAL_POOL
    _IN_LOCAL_POOL = True
    gc.freeze()
    for name, value in variables.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def _result(
    future: Any,
    batch: list[Item],
    on_error: Callable[[list[Item], BaseException], list[Result]],
) -> list[Result]:
    try:
        return future.result()
    except Exception as exc:  # a dead worker or a lost task: its assets fail, not the run
        logger.error("a task of %d assets did not finish: %s", len(batch), exc)
        return on_error(batch, exc)


def _run_on_dask(
    client: Any,
    address: str | None,
    task: Callable[[Any, list[Item]], list[Result]],
    shared: Any,
    batches: list[list[Item]],
    progress: Progress,
    on_error: Callable[[list[Item], BaseException], list[Result]],
    results: list[list[Result] | None],
) -> None:
    from distributed import as_completed as dask_completed

    logger.info(
        "running %d tasks on the Dask cluster at %s (%d workers)",
        len(batches),
        address,
        len(client.scheduler_info().get("workers", {})),
    )
    try:
        scattered = client.scatter(shared, broadcast=True)
    except Exception as exc:  # the workers cannot even take the config
        raise ExecutorError(
            f"the Dask workers of {address} cannot take the fleet's tasks ({exc}); start "
            "`dask worker` in the project folder (or with it on PYTHONPATH), with the same "
            "code and the config at the same path, as the README says"
        ) from None
    futures = [client.submit(task, scattered, batch, pure=False) for batch in batches]
    index_of = {future.key: index for index, future in enumerate(futures)}
    for future in dask_completed(futures):
        index = index_of[future.key]
        results[index] = _result(future, batches[index], on_error)
        progress.update(len(batches[index]))


def runs_in_process(config: FleetConfig, batches: int) -> bool:
    """Whether :func:`run_tasks` runs the tasks in this process (one worker, or one task)."""
    return config.executor == "local" and (pool_size(config) == 1 or batches <= 1)
