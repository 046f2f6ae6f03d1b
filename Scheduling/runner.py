"""Running the scheduled jobs: one child process per run, under the job's lock file.

A job runs the very command a crontab line would (``orchestrate.py train`` / ``score``, with
the same ``--config`` and ``--set``), so a scheduled run and a cron run behave the same, and a
failing or leaking run never harms the scheduler. Before a run the job's lock file is taken
without waiting, with the lock ``flock -n`` takes in the documented crontab (``filelock`` uses
``flock(2)`` on POSIX): a run still going, from this scheduler or from cron, makes the next one
skip with a log line. APScheduler keeps the timetable (at most one instance of a job at a
time, missed runs coalesced into one).

SIGTERM or SIGINT (Ctrl-C) stops cleanly: no new run starts, running children get SIGTERM and
are waited for (a training run killed before it publishes leaves only a staging folder, which
the next publish removes), and the process exits 0.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from filelock import FileLock, Timeout

from .config import parse_when

__all__ = ["Job", "run_schedule"]

logger = logging.getLogger(__name__)

_SIGNALS = (signal.SIGTERM, signal.SIGINT)
STOP_WAIT_S = 300.0
"""How long a stop waits for running children after SIGTERM before killing them."""


@dataclass(frozen=True)
class Job:
    """A scheduled command: its name, when (crontab fields or ``every``), argv and lock."""

    name: str
    when: str
    argv: Sequence[str]
    lock: Path


@dataclass
class _Children:
    """The runs going on now, so that a stop can end them."""

    running: set[subprocess.Popen[bytes]] = field(default_factory=set)
    guard: threading.Lock = field(default_factory=threading.Lock)
    stopping: threading.Event = field(default_factory=threading.Event)

    def start(self, argv: Sequence[str]) -> subprocess.Popen[bytes] | None:
        with self.guard:
            if self.stopping.is_set():
                return None
            child = subprocess.Popen(list(argv))
            self.running.add(child)
            return child

    def finish(self, child: subprocess.Popen[bytes]) -> None:
        with self.guard:
            self.running.discard(child)

    def stop_all(self) -> None:
        with self.guard:
            self.stopping.set()
            children = list(self.running)
        for child in children:
            child.terminate()
        for child in children:
            try:
                child.wait(timeout=STOP_WAIT_S)
            except subprocess.TimeoutExpired:
                logger.warning(
                    "schedule: run %d still going after %g s: killed", child.pid, STOP_WAIT_S
                )
                child.kill()


def _run(job: Job, children: _Children, describe: Callable[[int], str]) -> None:
    lock = FileLock(job.lock)
    try:
        lock.acquire(blocking=False)
    except Timeout:
        logger.warning(
            "schedule: %s skipped: %s is held by a run still going (from this scheduler or cron)",
            job.name,
            job.lock,
        )
        return
    try:
        started = time.monotonic()
        child = children.start(job.argv)
        if child is None:
            return
        logger.info("schedule: %s started (pid %d)", job.name, child.pid)
        code = child.wait()
        children.finish(child)
        logger.info(
            "schedule: %s finished: exit %d (%s) in %.1f s",
            job.name,
            code,
            describe(code),
            time.monotonic() - started,
        )
    finally:
        lock.release()


def run_schedule(
    jobs: Sequence[Job],
    *,
    timezone: str,
    describe: Callable[[int], str],
    stop: threading.Event | None = None,
) -> int:
    """Run ``jobs`` on their timetables until SIGTERM, SIGINT or ``stop`` is set; returns 0.

    Args:
        describe: the status name of a child's exit code (for the log).
        stop: set it to stop (tests, embedding); signals set it too.
    """
    from apscheduler.schedulers.background import BackgroundScheduler

    stop = stop or threading.Event()
    children = _Children()
    scheduler = BackgroundScheduler(timezone=timezone)
    for job in jobs:
        scheduler.add_job(
            _run,
            parse_when(job.when, timezone),
            args=[job, children, describe],
            id=job.name,
            name=job.name,
            max_instances=1,
            coalesce=True,
            misfire_grace_time=None,
        )
    handlers = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in _SIGNALS}
    try:
        scheduler.start()
        for job in scheduler.get_jobs():
            logger.info("schedule: %s (%s), next run %s", job.name, job.trigger, job.next_run_time)
        while not stop.wait(timeout=1.0):
            pass
        logger.info("schedule: stopping: no new runs, waiting for %d", len(children.running))
        scheduler.pause()
        children.stop_all()
        scheduler.shutdown(wait=True)
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
    logger.info("schedule: stopped")
    return 0
