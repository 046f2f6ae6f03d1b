"""The cooldown is kept per channel and severity: another axis's event never starts one."""

from __future__ import annotations

import numpy as np

from Scoring import Level, extract_events

LEVEL_OF = {"o": Level.OK, "a": Level.ALERT}
RULE = {"MinC": 2.0, "MaxC": 4.0, "T_long_steps": 1, "T_short_steps": 1}


def test_a_cooldown_starts_only_after_an_event_of_the_same_axis_and_severity() -> None:
    # a alerts at 0; b alerts at 1 (1 s after a's end) and at 3 (2 s after its own first).
    patterns = {"a": "aoooo", "b": "oaoao"}
    events = extract_events(
        np.arange(5.0),
        {axis: np.full(5, 3.0) for axis in patterns},
        {axis: np.array([LEVEL_OF[c] for c in p], dtype=np.int8) for axis, p in patterns.items()},
        {
            axis: {"MinC": 2.0, "MaxC": 4.0, "T_long_steps": 1, "T_short_steps": 1}
            for axis in patterns
        },
        axes=list(patterns),
        cooldown_seconds=2.0,
    )
    # b's first alert is kept (a's event does not cool b); its second starts 2 s after it.
    rows = events[["axis", "severity", "start", "end"]].itertuples(index=False)
    assert [tuple(row) for row in rows] == [("a", "alert", 0.0, 0.0), ("b", "alert", 1.0, 1.0)]
