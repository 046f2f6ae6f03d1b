"""``orchestrate.py schedule``: nightly training and periodic scoring in one long-lived process.

For machines without cron. The jobs run as the same commands a crontab would start (a child
process each), under the same lock files, on an APScheduler timetable; SIGTERM or Ctrl-C stops
it cleanly.
"""

from .config import ScheduleConfig, parse_when
from .runner import Job, run_schedule

__all__ = ["Job", "ScheduleConfig", "parse_when", "run_schedule"]
