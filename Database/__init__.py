"""Database access shared by extraction, ingest, the demo database and event writing."""

from .config import DatabaseConfig
from .connection import (
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
    DEMO_AXES,
    DEMO_LONG_TABLE,
    DEMO_TABLE,
    DemoData,
    build_demo_database,
    demo_data,
    ensure_demo_database,
)
from .errors import DatabaseError, UnsafeIdentifierError
from .identifiers import split_table_name, validate_identifier
from .ingest import IngestError, IngestResult, ingest_csv
from .tables import float_columns, table_exists, write_chunks

__all__ = [
    "DEMO_AXES",
    "DEMO_LONG_TABLE",
    "DEMO_TABLE",
    "DatabaseConfig",
    "DatabaseError",
    "DatabaseTarget",
    "DemoData",
    "IngestError",
    "IngestResult",
    "UnsafeIdentifierError",
    "build_demo_database",
    "connect_engine",
    "database_errors",
    "demo_data",
    "ensure_demo_database",
    "float_columns",
    "ingest_csv",
    "mask_url",
    "redact",
    "resolve_target",
    "scrub",
    "split_table_name",
    "table_exists",
    "url_secrets",
    "validate_identifier",
    "write_chunks",
]
