"""Typed configuration of ``orchestrate.py schedule`` (the ``schedule:`` block)."""

from __future__ import annotations

import re
import zoneinfo
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from DataExtractionAnalysis import parse_duration

__all__ = ["ScheduleConfig", "parse_when"]

_EVERY = re.compile(r"every\s+(.+)", re.IGNORECASE)


def parse_when(text: str, timezone: str = "UTC") -> Any:
    """An APScheduler trigger for a crontab line's five fields (``15 2 * * *``) or for
    ``every <duration>`` (``every 5m``, ``every 30s``; units s, m, h, d, w).

    Raises:
        ValueError: neither form, or a field out of range (the message says which).
    """
    from apscheduler.triggers.cron import CronTrigger
    from apscheduler.triggers.interval import IntervalTrigger

    every = _EVERY.fullmatch(text.strip())
    if every is not None:
        interval = parse_duration(every.group(1))
        if interval is None or interval.total_seconds() <= 0:
            raise ValueError(
                f"{text!r}: 'every' needs a positive duration with a unit s, m, h, d or w, "
                "e.g. 'every 5m'"
            )
        return IntervalTrigger(seconds=interval.total_seconds(), timezone=timezone)
    try:
        return CronTrigger.from_crontab(text, timezone=timezone)
    except ValueError as exc:
        raise ValueError(
            f"{text!r} is not a crontab schedule ({exc}); give its five fields, minute hour "
            "day month weekday, e.g. '15 2 * * *' (02:15 daily) or '*/5 * * * *', or "
            "'every 5m'"
        ) from None


class ScheduleConfig(BaseModel):
    """When ``orchestrate.py schedule`` trains and scores, and the locks it shares with cron."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    train: str | None = Field(
        default="15 2 * * *",
        description=(
            "When to train: five crontab fields ('15 2 * * *': daily at 02:15) or 'every "
            "<duration>' ('every 12h'); null: never."
        ),
    )
    score: str | None = Field(
        default="*/5 * * * *",
        description="When to score new data: as `train` ('*/5 * * * *': every 5 minutes).",
    )
    timezone: str = Field(
        default="UTC",
        description="Time zone of the crontab fields (an IANA name, e.g. Europe/Berlin).",
    )
    train_lock: str = Field(
        default="/tmp/mlbox-train.lock",
        description=(
            "Lock file a training run holds (the crontab's `flock -n` file): a run still "
            "holding it, from cron or from here, makes the next one skip."
        ),
    )
    score_lock: str = Field(
        default="/tmp/mlbox-score.lock",
        description="Lock file a score run holds, as train_lock.",
    )

    @field_validator("timezone")
    @classmethod
    def _check_timezone(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"{value!r} is not a known time zone; use an IANA name such as UTC or Europe/Berlin"
            ) from None
        return value

    @field_validator("train", "score")
    @classmethod
    def _check_when(cls, value: str | None) -> str | None:
        if value is not None:
            parse_when(value)
        return value
