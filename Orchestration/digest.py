"""The morning digest (``orchestrate.py report``): read events, state and data; build; render.

Reads only: the events table and its state (which events, up to which sample), the fleet state
table (assets that need data or failed, model age), and for each top event the samples around
it, whose expected values come from the version that scored the event. Writes only the HTML
file asked for (aside, then renamed into place).

Sections of other stages (drift and sensor health, failure probabilities, promotion
decisions) plug in through :data:`SECTION_SOURCES`: each source is called with a
:class:`DigestContext` and returns a :class:`Reports.DigestSection`, or None when it has
nothing (then its section is absent).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from DataExtractionAnalysis import EmptyWindowError, extract_window, list_assets
from DataPreparation import time_since
from ModelRegistry import ModelRegistry, RegistryError
from Reports import (
    Digest,
    DigestImages,
    DigestSection,
    SectionSource,
    build_digest,
    draw_event,
    draw_overview,
    event_plot,
    machine_axis,
    needs_plot,
    overview_matrix,
)
from Scoring import MACHINE_CHANNEL, EventStore

from .config import LoadedConfig
from .context import DatabaseSession, open_database
from .destinations import DestinationError
from .digest_sections import (
    coinciding_section,
    drift_section,
    failure_risk_section,
    health_section,
    promotion_section,
)
from .scoring import _load_model

__all__ = ["SECTION_SOURCES", "DigestContext", "DigestRun", "run_digest", "write_html"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DigestContext:
    """What a section source gets: the config, an open database, the period, the assets, and
    the kept events overlapping the period."""

    loaded: LoadedConfig
    session: DatabaseSession
    since: pd.Timestamp
    until: pd.Timestamp
    assets: list[str]
    events: pd.DataFrame | None = None


SECTION_SOURCES: list[SectionSource] = [
    drift_section,
    health_section,
    failure_risk_section,
    promotion_section,
    coinciding_section,
]
"""Sources of the digest's extra sections, in display order (see :mod:`.digest_sections`)."""


@dataclass(frozen=True)
class DigestRun:
    """A built digest, its figures, and how long each step took (seconds)."""

    digest: Digest
    images: DigestImages
    timings: dict[str, float] = field(default_factory=dict)


def _period(
    newest: dict[str, pd.Timestamp], since: dt.timedelta | dt.datetime, now: pd.Timestamp
) -> tuple[pd.Timestamp, pd.Timestamp]:
    """``[since, until]``: until the newest sample scored (now before any run), and ``since``
    a duration back from it, or a time."""
    until = max(newest.values()) if newest else now
    if isinstance(since, dt.timedelta):
        return until - pd.Timedelta(since), until
    start = pd.Timestamp(since)
    start = start.tz_localize("UTC") if start.tzinfo is None else start.tz_convert("UTC")
    return start, until


def run_digest(
    loaded: LoadedConfig,
    *,
    since: dt.timedelta | dt.datetime | None = None,
    asset: str | None = None,
    plots: bool = True,
    now: pd.Timestamp | None = None,
    sources: list[SectionSource] | None = None,
) -> DigestRun:
    """Build the digest of the configured table's events.

    Args:
        loaded: the validated config (``data``, ``events``, ``fleet``, ``report``).
        since: how far back (a duration from the newest sample scored) or from when; default
            ``report.since``.
        asset: one asset only (a fleet); None = every asset.
        plots: draw the top events and the overview (False: content only).
        now: the digest's time (model ages count to it); default the clock.
        sources: section sources; default :data:`SECTION_SOURCES`.

    Raises:
        DatabaseError: the database cannot be reached or read.
    """
    timings: dict[str, float] = {}
    started = time.perf_counter()
    config = loaded.config
    now = pd.Timestamp.now(tz="UTC") if now is None else now
    session = open_database(loaded, access="read")
    try:
        store = EventStore(
            session.engine, session.target, config.events.table, config.data.table, asset or ""
        )
        newest = store.newest_scored()
        if asset is not None:
            newest = {k: v for k, v in newest.items() if k == asset}
        start, until = _period(newest, since or config.report.since, now)
        events = store.read_overlapping(start, until, all_assets=asset is None)
        fleet = _fleet_state(loaded, session, asset)
        timings["read"] = time.perf_counter() - started
        assets = sorted(set(fleet["asset"].astype(str)) | set(events["asset"].astype(str)))
        context = DigestContext(loaded, session, start, until, assets, events)
        sections = _sections(context, SECTION_SOURCES if sources is None else sources)
        digest = build_digest(
            events,
            source_table=config.data.table,
            since=start,
            until=until,
            newest=newest,
            fleet=fleet,
            now=now,
            top_events=config.report.top_events,
            sections=sections,
            note=""
            if newest
            else (
                f"no score run has read {config.data.table} yet: run python orchestrate.py "
                "score (the period ends now)"
            ),
        )
        timings["build"] = time.perf_counter() - started - timings["read"]
        images = DigestImages()
        if plots:
            mark = time.perf_counter()
            images = DigestImages(
                events=_event_images(loaded, session, digest.top),
                overview=_overview_image(loaded, events, assets),
            )
            timings["plots"] = time.perf_counter() - mark
    finally:
        session.close()
    timings["total"] = time.perf_counter() - started
    logger.info(
        "digest of %s from %s to %s: %d assets with events, %d top events",
        config.data.table,
        start,
        until,
        len(digest.assets),
        len(digest.top),
    )
    return DigestRun(digest, images, {k: round(v, 3) for k, v in timings.items()})


def _fleet_state(loaded: LoadedConfig, session: DatabaseSession, asset: str | None) -> pd.DataFrame:
    """The fleet state table's rows (a fleet); a one-machine table: one row for its live
    version, the champion (asset ``""``), so its model age shows too."""
    from Fleet import FleetStateStore

    config = loaded.config
    if config.data.asset_col is None:
        registry = ModelRegistry(loaded.path(config.registry.root_dir))
        versions = registry.list_versions()
        try:
            live = registry.resolve("champion").name if versions else None
        except RegistryError:
            live = None
        rows = [
            {"asset": "", "status": "trained", "version": v.version, "trained_at": v.created_at}
            for v in versions
            if v.version == live
        ]
        return pd.DataFrame(rows, columns=["asset", "status", "version", "trained_at"])
    state = FleetStateStore(
        session.engine, session.target, config.fleet.table, config.data.table
    ).read()
    return state if asset is None else state[state["asset"].astype(str) == asset]


def _sections(context: DigestContext, sources: list[SectionSource]) -> list[DigestSection]:
    """The sections that have something to show, in order; a failing source is logged and
    left out (the digest still goes out)."""
    found = []
    for source in sources:
        try:
            section = source(context)
        except Exception:  # another stage's failure must not cost the morning digest
            logger.exception("digest section %r left out", getattr(source, "__name__", source))
            continue
        if section is not None and section.rows:
            found.append(section)
    return found


def _asset_values(loaded: LoadedConfig, session: DatabaseSession) -> dict[str, Any]:
    """Asset id as text → the id as the database holds it (one query for all top events)."""
    if loaded.config.data.asset_col is None:
        return {}
    return {
        str(value): value
        for value in list_assets(session.engine, session.target, loaded.config.data)
    }


def _event_images(
    loaded: LoadedConfig, session: DatabaseSession, top: list[dict[str, Any]]
) -> list[bytes | None]:
    """The figure of each top event that needs one (:func:`Reports.needs_plot`), else None."""
    wanted = needs_plot(top)
    ids = _asset_values(loaded, session) if any(wanted) else {}
    return [
        _event_image(loaded, session, event, ids) if draw else None
        for event, draw in zip(top, wanted, strict=True)
    ]


def _event_image(
    loaded: LoadedConfig, session: DatabaseSession, event: dict[str, Any], ids: dict[str, Any]
) -> bytes | None:
    """The PNG of one top event: its samples with context, expected line and threshold bands
    of the version that scored it; None when the data or the version is gone (logged)."""
    config = loaded.config
    axis = machine_axis(event)
    if axis == MACHINE_CHANNEL:
        return None
    pad = pd.Timedelta(minutes=config.report.context_minutes)
    start = pd.Timestamp(event["start"]) - pad
    end = pd.Timestamp(event["end"]) + pad
    try:
        asset = event["asset"] or None
        model = _load_model(loaded, event["model_version"], asset)
        frame = extract_window(
            session.engine,
            session.target,
            config.data,
            start=start.to_pydatetime(),
            end=end.to_pydatetime(),
            fast_path=config.database.fast_path,
            allow_missing_axes=True,
            asset=None if asset is None else ids.get(asset, asset),
        ).frame
        timed = frame.assign(time_s=time_since(frame["ts"], model.t0))
        predicted = model.models.predict(timed, [axis])
    except (EmptyWindowError, LookupError, ValueError, OSError) as exc:
        logger.warning(
            "no plot for %s %s at %s: %s", event["asset"], event["axis"], event["start"], exc
        )
        return None
    spec = event_plot(
        predicted,
        axis,
        event,
        model.thresholds.get(axis, {}),
        unit=config.data.units.get(axis),
    )
    return draw_event(spec)


def _overview_image(loaded: LoadedConfig, events: pd.DataFrame, assets: list[str]) -> bytes | None:
    """The overview heat map: assets (a one-machine table: the table) × axes; None without
    assets."""
    config = loaded.config
    if config.data.asset_col is None:  # one machine: its row is named after the table
        assets = [config.data.table]
        events = events.assign(asset=config.data.table)
    if not assets:
        return None
    matrix = overview_matrix(
        events, assets, config.data.axis_columns, config.report.overview_assets
    )
    shown = "" if len(matrix) == len(assets) else f" (top {len(matrix)} of {len(assets)})"
    return draw_overview(matrix, f"alert events per asset and axis{shown}")


def write_html(path: Path, html: str) -> Path:
    """Write the page aside and rename it into place (a reader never sees half a page).

    Raises:
        DestinationError: the file cannot be written (status ``registry-error``).
    """
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(html)
            os.replace(tmp, target)
        finally:
            Path(tmp).unlink(missing_ok=True)
    except OSError as exc:
        raise DestinationError(
            f"--output {target} cannot be written: {exc.strerror or exc}; give the path of an "
            "HTML file in a writable folder, or free space on its disk"
        ) from exc
    return target
