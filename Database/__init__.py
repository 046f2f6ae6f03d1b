"""Database access shared by extraction, ingest, the demo database and event writing."""

from .config import DatabaseConfig
from .connection import (
    Access,
    DatabaseTarget,
    connect_engine,
    database_errors,
    mask_url,
    redact,
    resolve_target,
    scrub,
    url_secrets,
)
from .demo import (
    DEMO_ANOMALY_TABLE,
    DEMO_AXES,
    DEMO_LONG_TABLE,
    DEMO_TABLE,
    DemoData,
    build_demo_database,
    demo_data,
    ensure_demo_database,
)
from .demo_fleet import (
    FLEET_ASSET_COLUMN,
    FLEET_FAULTY_ROBOT,
    FLEET_LABELS_TABLE,
    FLEET_ROBOTS,
    FLEET_SHORT_ROBOT,
    FLEET_TABLE,
    fleet_demo_data,
)
from .demo_signals import DEFAULT_ROWS as DEFAULT_DEMO_ROWS
from .demo_signals import TRAIN_SHARE as DEMO_TRAIN_SHARE
from .errors import DatabaseError, UnsafeIdentifierError
from .identifiers import split_table_name, validate_identifier
from .ingest import IngestError, IngestResult, ingest_csv, parse_delimiter
from .tables import (
    IfExists,
    WriteResult,
    add_missing_columns,
    float_columns,
    table_exists,
    write_chunks,
    write_transaction,
)

__all__ = [
    "DEFAULT_DEMO_ROWS",
    "DEMO_ANOMALY_TABLE",
    "DEMO_AXES",
    "DEMO_LONG_TABLE",
    "DEMO_TABLE",
    "DEMO_TRAIN_SHARE",
    "FLEET_ASSET_COLUMN",
    "FLEET_FAULTY_ROBOT",
    "FLEET_LABELS_TABLE",
    "FLEET_ROBOTS",
    "FLEET_SHORT_ROBOT",
    "FLEET_TABLE",
    "Access",
    "DatabaseConfig",
    "DatabaseError",
    "DatabaseTarget",
    "DemoData",
    "IfExists",
    "IngestError",
    "IngestResult",
    "UnsafeIdentifierError",
    "WriteResult",
    "add_missing_columns",
    "build_demo_database",
    "connect_engine",
    "database_errors",
    "demo_data",
    "ensure_demo_database",
    "fleet_demo_data",
    "float_columns",
    "ingest_csv",
    "mask_url",
    "parse_delimiter",
    "redact",
    "resolve_target",
    "scrub",
    "split_table_name",
    "table_exists",
    "url_secrets",
    "validate_identifier",
    "write_chunks",
    "write_transaction",
]
