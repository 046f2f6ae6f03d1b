"""Promotion of a freshly published version: ``registry.promote`` and the replay gate.

``auto`` makes every new version the champion, ``manual`` none (``registry promote V``), and
``gate`` (the default) replays the newest ``registry.replay_days`` of the data with the
candidate and with the champion, through the scoring code path without writing anything
(:func:`Orchestration.evaluation.dry_score`), and promotes only when

- the candidate's alert and error events on the replay are at most
  ``champion × (1 + registry.max_alarm_increase)`` (and one more event is always allowed, so
  a champion with no event does not block every candidate), and
- where ``labels.table`` is set, every label the champion found is still found.

An asset's first version becomes champion at once, whatever the policy. The decision, with
per channel the events that would appear or disappear, both expected alarm rates and the
labels' recall and precision, is logged, returned (``--json``, the fleet table) and recorded in
``aliases/decisions/<version>.json`` beside the versions (the versions themselves stay
untouched).
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from dataclasses import dataclass
from typing import Any

import pandas as pd

from DataExtractionAnalysis import newest_time
from Labels import DetectionReport
from ModelRegistry import ModelRegistry, PublishedVersion, RegistryError
from Scoring import ScoringInputError

from .config import LoadedConfig
from .context import DatabaseSession
from .evaluation import _episodes, detection, dry_scores
from .scoring import _as_utc, _check_axes, model_of

__all__ = ["Replay", "compare_replays", "decide_promotion"]

logger = logging.getLogger(__name__)

_ALARMS = ("alert", "error")


@dataclass(frozen=True)
class Replay:
    """One version's dry run over the replay window."""

    version: str
    events: pd.DataFrame
    """Columns ``axis``, ``start``, ``end``, ``severity``: the alert and error episodes."""
    days: float
    samples: int
    expected_per_day: float | None
    """The false alert events per day its thresholds expect (all channels)."""
    detection: DetectionReport | None
    """Against ``labels.table`` (None: no labels configured)."""


def _expected(thresholds: dict[str, dict[str, Any]]) -> float | None:
    rates = [r.get("expected_events_per_day") for r in thresholds.values()]
    known = [float(r) for r in rates if isinstance(r, (int, float))]
    return sum(known) if known else None


def replay(
    loaded: LoadedConfig,
    session: DatabaseSession,
    models: list[Any],
    start: dt.datetime,
    *,
    asset: Any = None,
    labels: pd.DataFrame | None = None,
) -> list[Replay]:
    """Score ``[start, newest]`` with each model without writing (one read of the data for
    all); their episodes and figures."""
    events = loaded.config.events
    replays = []
    for model, scored in zip(
        models, dry_scores(loaded, session, models, start, None, asset), strict=True
    ):
        found = _episodes(
            scored.events, events.merge_gap_seconds, events.cooldown_seconds, severities=_ALARMS
        )
        report = None if labels is None else detection(loaded, scored, labels)
        replays.append(
            Replay(
                model.version,
                found,
                scored.days,
                len(scored.ts),
                _expected(model.thresholds),
                report,
            )
        )
    return replays


def _unmatched(ours: pd.DataFrame, theirs: pd.DataFrame) -> pd.Series:
    """Per row of ``ours``: no episode of ``theirs`` on its channel and severity overlaps it."""
    if ours.empty:
        return pd.Series([], dtype=bool)
    pairs = ours.reset_index().merge(theirs, on=["axis", "severity"], suffixes=("", "_other"))
    overlapping = pairs[
        (pairs["start"] <= pairs["end_other"]) & (pairs["end"] >= pairs["start_other"])
    ]
    return ~ours.index.to_series().isin(overlapping["index"])


def _per_channel(champion: Replay, candidate: Replay) -> dict[str, dict[str, int]]:
    appear = candidate.events[_unmatched(candidate.events, champion.events).to_numpy()]
    disappear = champion.events[_unmatched(champion.events, candidate.events).to_numpy()]
    channels = sorted({*champion.events["axis"], *candidate.events["axis"]}, key=str)
    return {
        str(channel): {
            "champion": int((champion.events["axis"] == channel).sum()),
            "candidate": int((candidate.events["axis"] == channel).sum()),
            "appear": int((appear["axis"] == channel).sum()),
            "disappear": int((disappear["axis"] == channel).sum()),
        }
        for channel in channels
    }


def _label_figures(report: DetectionReport | None) -> dict[str, Any] | None:
    if report is None:
        return None
    return {
        "labels": report.labels,
        "found": report.labels_found,
        "event_recall": report.event_recall,
        "event_precision": report.event_precision,
        "recall": report.recall,
        "precision": report.precision,
    }


def _lost_labels(champion: Replay, candidate: Replay) -> list[str]:
    if champion.detection is None or candidate.detection is None:
        return []
    return [
        f"{pd.Timestamp(old['start_ts']).isoformat()}..{pd.Timestamp(old['end_ts']).isoformat()}"
        + ("" if old["axis"] is None else f" on {old['axis']}")
        for old, new in zip(
            champion.detection.per_label, candidate.detection.per_label, strict=True
        )
        if old["found"] and not new["found"]
    ]


def compare_replays(champion: Replay, candidate: Replay, max_increase: float) -> dict[str, Any]:
    """The gate's verdict on two replays of the same window (pure; see the module docstring).

    Returns:
        ``promoted``, ``reason``, ``alarms`` (counts, the allowed count, per day),
        ``channels`` (per channel: both counts, episodes appearing and disappearing),
        ``expected_events_per_day`` and ``labels`` (both versions' figures, the lost labels).
    """
    old, new = len(champion.events), len(candidate.events)
    allowed = max(math.floor(old * (1 + max_increase) + 1e-9), old + 1)
    days = champion.days or candidate.days
    lost = _lost_labels(champion, candidate)
    if lost:
        promoted = False
        reason = f"loses {len(lost)} labelled event(s) the champion finds: {', '.join(lost[:5])}"
    elif new > allowed:
        promoted = False
        reason = (
            f"{new} alarm events on the replay against the champion's {old} (at most {allowed} "
            f"allowed by registry.max_alarm_increase {max_increase:g})"
        )
    else:
        promoted = True
        reason = f"{new} alarm events on the replay against the champion's {old} (<= {allowed})"
    return {
        "promoted": promoted,
        "reason": reason,
        "alarms": {
            "champion": old,
            "candidate": new,
            "allowed": allowed,
            "champion_per_day": old / days if days else None,
            "candidate_per_day": new / days if days else None,
        },
        "channels": _per_channel(champion, candidate),
        "expected_events_per_day": {
            "champion": champion.expected_per_day,
            "candidate": candidate.expected_per_day,
        },
        "labels": None
        if champion.detection is None
        else {
            "champion": _label_figures(champion.detection),
            "candidate": _label_figures(candidate.detection),
            "lost": lost,
        },
    }


def run_gate(
    loaded: LoadedConfig,
    session: DatabaseSession,
    registry: ModelRegistry,
    candidate: str,
    champion: str,
    *,
    asset: Any = None,
    labels: pd.DataFrame | None = None,
) -> dict[str, Any]:
    """Replay the newest ``registry.replay_days`` with both versions and compare them."""
    config = loaded.config.registry
    newest = newest_time(session.engine, session.target, loaded.config.data, asset=asset)
    if newest is None:
        return {"promoted": True, "reason": "no data to replay: the gate cannot compare"}
    start = (_as_utc(newest) - pd.Timedelta(days=config.replay_days)).to_pydatetime()
    new_model = model_of(registry, candidate)
    try:
        old_model = model_of(registry, champion)
        _check_axes(loaded.config.data, old_model)
    except (ScoringInputError, RegistryError) as exc:
        return {"promoted": True, "reason": f"the champion {champion} cannot score: {exc}"}
    new, old = replay(loaded, session, [new_model, old_model], start, asset=asset, labels=labels)
    verdict = compare_replays(old, new, config.max_alarm_increase)
    in_sample = _in_sample_share(new_model.trained_until, start, _as_utc(newest))
    verdict["replay"] = {
        "start": start.isoformat(),
        "end": _as_utc(newest).isoformat(),
        "days": config.replay_days,
        "samples": new.samples,
        "candidate_in_sample_share": round(in_sample, 3),
    }
    if in_sample > 0:
        logger.warning(
            "%.0f %% of the replay lies inside %s's training window: the candidate is judged "
            "partly on data it was fitted to, which favours it; leave the replay days out of "
            "training (data.train_end: -%gd) for a fair gate",
            100 * in_sample,
            candidate,
            config.replay_days,
        )
    return verdict


def _in_sample_share(trained_until: Any, start: Any, end: pd.Timestamp) -> float:
    """Share of the replay ``[start, end]`` (by time) at or before the candidate's last
    training sample."""
    if trained_until is None:
        return 0.0
    last = (
        pd.Timestamp(float(trained_until), unit="s", tz="UTC")
        if isinstance(trained_until, (int, float))
        else _as_utc(trained_until)
    )
    begin = _as_utc(start)
    span = (end - begin).total_seconds()
    if span <= 0:
        return 1.0 if last >= end else 0.0
    return float(min(max((last - begin).total_seconds() / span, 0.0), 1.0))


def decide_promotion(
    loaded: LoadedConfig,
    session: DatabaseSession,
    registry: ModelRegistry,
    candidate: str,
    champion: str | None,
    *,
    asset: Any = None,
    labels: pd.DataFrame | None = None,
    published: PublishedVersion | None = None,
) -> dict[str, Any]:
    """Apply ``registry.promote`` to the version ``candidate`` just published.

    Args:
        champion: the version live before ``candidate`` was published (None: the first).
        published: what publishing ``candidate`` returned, when this process published it
            (then promoting it does not read its files again: see ``ModelRegistry.promote``).

    Returns:
        The decision (``promoted``, ``reason``, ``policy``, ``champion``, the gate's figures);
        recorded in ``aliases/decisions/<candidate>.json`` and logged.
    """
    policy = loaded.config.registry.promote
    if champion is None:
        verdict: dict[str, Any] = {"promoted": True, "reason": "the first version of its lineage"}
    elif policy == "auto":
        verdict = {"promoted": True, "reason": "registry.promote is auto"}
    elif policy == "manual":
        verdict = {
            "promoted": False,
            "reason": f"registry.promote is manual: `registry promote {candidate}` makes it live",
        }
    else:
        verdict = run_gate(
            loaded, session, registry, candidate, champion, asset=asset, labels=labels
        )
    decision = {
        "version": candidate,
        "champion": champion,
        "policy": policy,
        **verdict,
        "decided_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }
    of = "" if asset is None else f"asset {asset}: "
    if decision["promoted"]:
        registry.promote(candidate, decision=decision, published=published)
        logger.info("%s%s promoted to champion: %s", of, candidate, decision["reason"])
    else:
        registry.keep_champion(champion)
        registry.record_decision(candidate, decision)
        logger.warning(
            "%s%s NOT promoted, scoring keeps %s: %s", of, candidate, champion, decision["reason"]
        )
    return decision
