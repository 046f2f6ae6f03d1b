"""A long range scored in chunks (``scoring.chunk_rows``) equals scoring it in one piece.

Random data (idle, ok, alert and error stretches), jittered sample times (so chunk cuts fall
anywhere between samples), random run rules, merge gap and cooldown, timestamp and epoch time
columns, a closed range and a run up to the newest data: the CSV (byte for byte), the stored
events, the continuation state and the run's report are the same with a tiny chunk size as
with one chunk. Each case prints its seed and chunk size when it fails.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from conftest import Db
from scoring_helpers import T0, loaded_config, publish_linear_version, stored_events, use_database

from Database import write_chunks
from Orchestration.scoring import _RangeScorer, run_scoring
from Scoring import EventStore

# Chunks longer than the calendar (the first overflows a datetime, the second a timedelta):
# the range in one piece.
ONE_PIECE = (10**12, 10**20)
EVENT_COLUMNS = [
    "axis",
    "severity",
    "start_ts",
    "end_ts",
    "duration_s",
    "samples",
    "peak_residual",
    "threshold",
    "suppressed",
]


def _random_samples(rng: np.random.Generator, n: int, epoch: bool) -> pd.DataFrame:
    """Jittered times; per axis segments of 1-8 samples, idle, ok, alert-high or error-high."""
    steps = rng.uniform(0.4, 1.6, size=n).round(3)
    times = T0 + pd.to_timedelta(np.cumsum(steps), unit="s")
    frame = pd.DataFrame({"ts": times})
    for axis in ("a", "b"):
        values: list[float] = []
        while len(values) < n:
            value = (0.0, 1.5, 2.5, 3.5)[rng.choice(4, p=[0.1, 0.4, 0.3, 0.2])]
            values += [value] * int(rng.integers(1, 9))
        frame[axis] = values[:n]
    if epoch:
        frame["ts"] = (frame["ts"] - pd.Timestamp(0, tz="UTC")).dt.total_seconds()
    return frame


@pytest.mark.parametrize(
    ("seed", "dialect"),
    [(seed, "sqlite") for seed in range(16)]
    + [pytest.param(seed, "postgresql", marks=pytest.mark.postgres) for seed in range(4)],
)
def test_chunked_scoring_equals_scoring_in_one_piece(
    request: pytest.FixtureRequest,
    tmp_path,
    monkeypatch: pytest.MonkeyPatch,
    seed: int,
    dialect: str,
) -> None:
    db: Db = request.getfixturevalue("sqlite_db" if dialect == "sqlite" else "pg_db")
    rng = np.random.default_rng(seed)
    epoch = seed % 2 == 1
    up_to_newest = seed % 4 >= 2
    t_long, t_short = (int(v) for v in rng.integers(1, 6, size=2))
    merge, cooldown = (float(v) for v in rng.choice([0.0, 0.0, 2.5, 6.0], size=2))
    chunk_rows = int(rng.integers(1, 25))
    case = (
        f"seed {seed}: chunk_rows {chunk_rows}, T {t_long}/{t_short}, merge {merge}, "
        f"cooldown {cooldown}, epoch {epoch}, up to newest {up_to_newest}"
    )
    n = 150
    samples = _random_samples(rng, n, epoch)
    time_type = sa.Float(53) if epoch else sa.DateTime(timezone=True)
    write_chunks(
        db.engine,
        db.target,
        db.table("s"),
        {"ts": time_type, "a": sa.Float(53), "b": sa.Float(53)},
        [samples],
    )
    use_database(db, monkeypatch)
    publish_linear_version(
        tmp_path / "registry", ["a", "b"], t_long=t_long, t_short=t_short, epoch=epoch
    )
    chunks_scored = []
    real_score = _RangeScorer.score

    def score(self: _RangeScorer, start, end):
        chunks_scored.append((start, end))
        return real_score(self, start, end)

    monkeypatch.setattr(_RangeScorer, "score", score)
    # Without --end a run continues after the training window up to the newest sample.
    window = {} if up_to_newest else {"end": (T0 + pd.Timedelta(seconds=n * 0.9)).to_pydatetime()}

    reports, csv = {}, {}
    for name, rows in (("whole", ONE_PIECE[seed % 2]), ("chunked", chunk_rows)):
        loaded = loaded_config(
            db,
            tmp_path,
            f"events.table={db.table(name)}",
            f"events.merge_gap_seconds={merge}",
            f"events.cooldown_seconds={cooldown}",
            f"scoring.chunk_rows={rows}",
        )
        chunks_scored.clear()
        reports[name] = run_scoring(loaded, output=tmp_path / f"{name}.csv", **window)
        csv[name] = (tmp_path / f"{name}.csv").read_bytes()
        assert len(chunks_scored) > 3 if name == "chunked" else len(chunks_scored) == 1, case

    assert csv["chunked"] == csv["whole"], case
    whole, chunked = (
        stored_events(db, name)[EVENT_COLUMNS].sort_values(
            ["start_ts", "axis", "severity"], ignore_index=True
        )
        for name in ("whole", "chunked")
    )
    assert len(whole) > 5, case
    pd.testing.assert_frame_equal(chunked, whole, obj=case)
    states = {
        name: EventStore(db.engine, db.target, db.table(name), db.table("s")).scored_until()
        for name in ("whole", "chunked")
    }
    assert states["chunked"] == states["whole"] is not None, case
    keep = ("start", "end", "samples", "counts", "final_until", "written")
    assert {k: getattr(reports["chunked"], k) for k in keep} == {
        k: getattr(reports["whole"], k) for k in keep
    }, case
