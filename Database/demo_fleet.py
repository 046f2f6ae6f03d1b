"""The demo fleet: six robots of the demo's kind in one table, keyed by ``robot_id``.

``robot_fleet`` (``ts, robot_id, axis1..axis8``) holds ~21 hours of each robot, each generated
by :func:`Database.demo_signals.demo_data` with its own seed and size (base current), so the
shipped ``data.train_end`` cuts every robot at about 80 %:

- ``robot_01`` .. ``robot_04`` and ``robot_06``: healthy robots (no injected anomalies);
- ``robot_04``: a fault in the scored part: axis3 runs +8 σ high for 30 minutes;
- ``robot_05``: joined the fleet shortly before the training end: about 600 usable samples
  there, fewer than ``fleet.min_samples`` (1000), so it is not trained (``needs-data``).

The fault's window is in ``robot_fleet_labels`` (``start_ts, end_ts, axis, kind, severity,
robot_id``). Same build → identical data.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .demo_signals import DEMO_AXES, LABEL_COLUMNS, demo_data

__all__ = [
    "FLEET_ASSET_COLUMN",
    "FLEET_FAULTY_ROBOT",
    "FLEET_LABELS_TABLE",
    "FLEET_ROBOTS",
    "FLEET_SHORT_ROBOT",
    "FLEET_TABLE",
    "FleetDemo",
    "fleet_demo_data",
]

FLEET_TABLE = "robot_fleet"
FLEET_LABELS_TABLE = "robot_fleet_labels"
FLEET_ASSET_COLUMN = "robot_id"
FLEET_ROBOTS = tuple(f"robot_{k:02d}" for k in range(1, 7))
FLEET_FAULTY_ROBOT = "robot_04"
FLEET_SHORT_ROBOT = "robot_05"

FLEET_ROWS = 40_000
"""Samples per robot of the default demo (``demo-db`` builds ``--rows / 8``, at least 1000)."""
_STEP = pd.Timedelta(milliseconds=1891)
_TRAIN_END = pd.Timestamp("2026-01-10 14:00:00", tz="UTC")
"""The shipped config's ``data.train_end``."""
_SHORT_ROWS_BEFORE_END = 600
_SCALES = (1.0, 0.8, 1.25, 1.1, 0.9, 1.4)
_FAULT_AXIS = 2  # axis3
_FAULT_AT = 0.9
_FAULT_MINUTES = 30.0
_FAULT_SIGMAS = 8.0


@dataclass(frozen=True)
class FleetDemo:
    """The fleet's samples (``ts``, ``robot_id``, axes) and its labelled fault."""

    samples: pd.DataFrame
    labels: pd.DataFrame


def fleet_demo_data(rows: int = FLEET_ROWS) -> FleetDemo:
    """Generate the deterministic demo fleet, ``rows`` samples per robot (``robot_05``: 1000).

    Raises:
        ValueError: ``rows`` is below 1000.
    """
    if rows < 1000:
        raise ValueError(f"the demo fleet needs at least 1000 rows per robot, got {rows}")
    frames = []
    labels = []
    for index, robot in enumerate(FLEET_ROBOTS):
        count, start = rows, _TRAIN_END - 0.8 * rows * _STEP
        if robot == FLEET_SHORT_ROBOT:
            count, start = 1000, _TRAIN_END - _SHORT_ROWS_BEFORE_END * _STEP
        samples = demo_data(
            count, seed=1000 + index, start=start, base_scale=_SCALES[index], anomalies=False
        ).samples
        if robot == FLEET_FAULTY_ROBOT:
            first = int(_FAULT_AT * count)
            stop = min(count, first + int(_FAULT_MINUTES * 60 / _STEP.total_seconds()))
            axis = DEMO_AXES[_FAULT_AXIS]
            column = samples[axis].to_numpy(copy=True)
            running = column[first:stop] != 0
            sigma = 0.03 * 6.5 * _SCALES[index]  # 3 % noise of axis3's 6.5 A base current
            column[first:stop] = np.where(
                running, column[first:stop] + _FAULT_SIGMAS * sigma, column[first:stop]
            )
            samples[axis] = np.round(column, 4)
            labels.append(
                {
                    "start_ts": samples["ts"].iloc[first],
                    "end_ts": samples["ts"].iloc[stop - 1],
                    "axis": axis,
                    "kind": "fault",
                    "severity": "alert",
                    "robot_id": robot,
                }
            )
        samples.insert(1, "robot_id", robot)
        frames.append(samples)
    return FleetDemo(
        samples=pd.concat(frames, ignore_index=True),
        labels=pd.DataFrame(labels, columns=[*LABEL_COLUMNS, "robot_id"]),
    )
