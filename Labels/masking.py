"""Which training rows to leave out: known incidents (with a margin) and maintenance windows.

Incidents are the windows of the labels table and the events operators confirmed (see
:mod:`Labels.feedback`); each is widened by ``margin`` on both sides, since a machine behaves
abnormally before an incident is noticed and until it is repaired. Maintenance windows (the
calendar table) are left out as they are. A model fitted on these rows would learn an incident
or a service as normal behaviour.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .store import label_mask

__all__ = ["TrainingMask", "training_mask"]


@dataclass(frozen=True)
class TrainingMask:
    """Rows of a training window inside incidents and maintenance windows.

    Attributes:
        incidents: ``"*"`` → rows inside any incident window (widened by the margin); per axis,
            rows inside an incident of that axis or of the whole machine.
        maintenance: rows inside a maintenance window.
        windows: how many windows of each source the run saw (``labels``, ``confirmed``,
            ``maintenance``).
        margin_s: the margin added on each side of an incident.
    """

    incidents: dict[str, np.ndarray]
    maintenance: np.ndarray
    windows: dict[str, int] = field(default_factory=dict)
    margin_s: float = 0.0

    @property
    def excluded(self) -> np.ndarray:
        """Rows left out of fits and calibration: in an incident or a maintenance window."""
        return self.incidents["*"] | self.maintenance

    def summary(self) -> dict[str, Any]:
        """Counts for ``meta.yaml`` and the log: windows seen and rows masked by each source."""
        return {
            "windows": dict(self.windows),
            "margin_s": self.margin_s,
            "rows": int(self.maintenance.size),
            "masked_incident_rows": int(np.count_nonzero(self.incidents["*"])),
            "masked_maintenance_rows": int(np.count_nonzero(self.maintenance)),
            "masked_rows": int(np.count_nonzero(self.excluded)),
        }


def _widened(windows: pd.DataFrame, margin: pd.Timedelta) -> pd.DataFrame:
    """``start_ts``/``end_ts``/``axis`` of ``windows``, widened by ``margin`` on both sides; the
    machine channel ``*`` (a confirmed machine-level event) counts as the whole machine."""
    if windows.empty:
        return pd.DataFrame(
            {
                "start_ts": pd.Series(dtype="datetime64[ns, UTC]"),
                "end_ts": pd.Series(dtype="datetime64[ns, UTC]"),
                "axis": pd.Series(dtype=object),
            }
        )
    axis = windows["axis"].astype(object)
    return pd.DataFrame(
        {
            "start_ts": pd.to_datetime(windows["start_ts"], utc=True) - margin,
            "end_ts": pd.to_datetime(windows["end_ts"], utc=True) + margin,
            "axis": axis.where(axis.notna() & (axis != "*"), None),
        }
    ).reset_index(drop=True)


def training_mask(
    ts: pd.Series,
    axes: Sequence[str],
    *,
    labels: pd.DataFrame | None = None,
    confirmed: pd.DataFrame | None = None,
    maintenance: pd.DataFrame | None = None,
    margin: pd.Timedelta | None = None,
) -> TrainingMask:
    """The rows of ``ts`` inside incidents (labels and confirmed events, widened by ``margin``)
    and maintenance windows.

    Args:
        ts: sorted times of the training rows (UTC timestamps or epoch seconds).
        axes: the axes of the per-axis incident masks.
        labels, confirmed, maintenance: windows with ``start_ts``, ``end_ts`` (inclusive) and
            ``axis`` (None = the whole machine; ignored for maintenance); None = none.
        margin: added before each incident's start and after its end (default none).
    """
    margin = pd.Timedelta(0) if margin is None else margin
    labels = _widened(labels if labels is not None else pd.DataFrame(), margin)
    confirmed_windows = _widened(confirmed if confirmed is not None else pd.DataFrame(), margin)
    known = [frame for frame in (labels, confirmed_windows) if len(frame)]
    incidents = pd.concat(known, ignore_index=True) if known else labels
    service = _widened(maintenance if maintenance is not None else pd.DataFrame(), pd.Timedelta(0))
    return TrainingMask(
        incidents=label_mask(ts, incidents, axes),
        maintenance=label_mask(ts, service.assign(axis=None))["*"],
        windows={
            "labels": len(labels),
            "confirmed": len(confirmed_windows),
            "maintenance": len(service),
        },
        margin_s=margin.total_seconds(),
    )
