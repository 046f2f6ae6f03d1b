"""Opening the configured database for a run (embedded demo database when none is set)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy.engine import Engine

from Database import DatabaseTarget, connect_engine, ensure_demo_database, resolve_target

from .config import LoadedConfig

__all__ = ["DatabaseSession", "open_database"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DatabaseSession:
    """The database of a run: where it is (masked for display) and an open engine."""

    target: DatabaseTarget
    engine: Engine

    def close(self) -> None:
        """Release pooled connections."""
        self.engine.dispose()


def open_database(loaded: LoadedConfig) -> DatabaseSession:
    """Resolve the URL from ``database.url_env`` and connect; build the demo DB on first use.

    Raises:
        DatabaseError: the URL is malformed or the database cannot be reached.
    """
    config = loaded.config.database
    target = resolve_target(config, loaded.base_dir)
    if target.embedded:
        path = ensure_demo_database(loaded.path(config.embedded_path))
        logger.warning(
            "using the embedded demo database %s because %s is not set; to use your own "
            "database put %s=postgresql://user:password@host:5432/dbname in .env (see "
            ".env.example) or export it",
            path,
            config.url_env,
            config.url_env,
        )
    return DatabaseSession(target=target, engine=connect_engine(target, config))
