"""The column types and nullability of the tables the event store creates on PostgreSQL."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from conftest import Db

from Scoring import EventStore

TIMESTAMPTZ = "TIMESTAMP WITH TIME ZONE"  # reflected as TIMESTAMP with timezone=True
DOUBLE = "DOUBLE PRECISION"

EVENTS = {
    "id": ("INTEGER", False),
    "asset": ("VARCHAR(128)", False),
    "source_table": ("VARCHAR(255)", False),
    "axis": ("VARCHAR(128)", False),
    "severity": ("VARCHAR(8)", False),
    "start_ts": (TIMESTAMPTZ, False),
    "end_ts": (TIMESTAMPTZ, False),
    "duration_s": (DOUBLE, False),
    "samples": ("INTEGER", False),
    "peak_residual": (DOUBLE, False),
    "threshold": (DOUBLE, False),
    "suppressed": ("BOOLEAN", False),
    "side": ("VARCHAR(8)", True),
    "peak_ts": (TIMESTAMPTZ, True),
    "actual": (DOUBLE, True),
    "expected": (DOUBLE, True),
    "ratio": (DOUBLE, True),
    "contributors": ("TEXT", True),
    "model_version": ("VARCHAR(64)", False),
    "run_id": ("VARCHAR(64)", False),
    "created_at": (TIMESTAMPTZ, False),
    "updated_at": (TIMESTAMPTZ, False),
}
STATE = {
    "source_table": ("VARCHAR(255)", False),
    "asset": ("VARCHAR(128)", False),
    "model_version": ("VARCHAR(64)", False),
    "scored_until": (TIMESTAMPTZ, False),
    "last_ts": (TIMESTAMPTZ, True),
    "run_id": ("VARCHAR(64)", False),
    "updated_at": (TIMESTAMPTZ, False),
}


def _type_name(column_type: sa.types.TypeEngine) -> str:
    if isinstance(column_type, sa.DateTime):
        return TIMESTAMPTZ if column_type.timezone else "TIMESTAMP WITHOUT TIME ZONE"
    return str(column_type)


@pytest.mark.postgres
def test_the_event_tables_have_their_column_types_and_nullability(pg_db: Db) -> None:
    store = EventStore(pg_db.engine, pg_db.target, pg_db.table("events"), pg_db.table("s"))
    with store.session("v1", "run"):
        pass
    inspector = sa.inspect(pg_db.engine)
    for table, expected in (("events", EVENTS), ("events_state", STATE)):
        columns = inspector.get_columns(table, schema=pg_db.schema)
        found = {c["name"]: (_type_name(c["type"]), c["nullable"]) for c in columns}
        assert found == expected, table
