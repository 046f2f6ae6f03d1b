"""Opening the configured database for a run (the embedded demo database only when asked)."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from dotenv import dotenv_values, load_dotenv
from sqlalchemy.engine import Engine

from Database import (
    Access,
    DatabaseError,
    DatabaseTarget,
    connect_engine,
    ensure_demo_database,
    resolve_target,
)

from .config import LoadedConfig

__all__ = [
    "DatabaseSession",
    "database_password",
    "load_environment",
    "open_database",
    "secret_variables",
]

logger = logging.getLogger(__name__)

_NO_CONFIG_FILE = "built-in defaults"
"""``LoadedConfig.source`` when no config file was found."""


class _RedactingFilter(logging.Filter):
    """Replaces every occurrence of the given secrets in log records (defence in depth)."""

    def __init__(self, secrets: Sequence[str]) -> None:
        super().__init__()
        self._secrets = [s for s in secrets if s]

    def _scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if any(secret in message for secret in self._secrets):
            record.msg, record.args = self._scrub(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self._scrub(record.exc_text)
        return True


def load_environment(loaded: LoadedConfig) -> None:
    """Load ``.env`` next to the config file and keep the database password out of all logs.

    Variables already set in the environment win over ``.env``. Every handler of the root
    logger gets a filter that masks the password of the URL in ``database.url_env``, should
    any message ever contain it. Call it after configuring logging (the CLI and the notebook
    both do).
    """
    load_dotenv(loaded.base_dir / ".env", override=False)
    password = database_password(loaded)
    if password:
        for handler in logging.getLogger().handlers:
            handler.addFilter(_RedactingFilter([password]))


def secret_variables(loaded: LoadedConfig) -> list[str]:
    """Environment variables a helper process must not inherit (the plot workers need none).

    The database URL (``database.url_env``), libpq's ``PGPASSWORD``, every name set in
    ``.env``, and any variable whose value holds the database password.
    """
    names = {loaded.config.database.url_env, "PGPASSWORD"}
    names.update(name for name in dotenv_values(loaded.base_dir / ".env") if name)
    password = database_password(loaded)
    if password:
        names.update(name for name, value in os.environ.items() if password in value)
    return sorted(names)


def database_password(loaded: LoadedConfig) -> str | None:
    """The password of the URL in ``database.url_env`` (to mask it), or None."""
    raw = os.environ.get(loaded.config.database.url_env, "")
    try:
        password = sa.make_url(raw).password if raw else None
    except (sa.exc.ArgumentError, ValueError):
        return None
    return str(password) if password else None


@dataclass(frozen=True)
class DatabaseSession:
    """The database of a run: where it is (masked for display) and an open engine."""

    target: DatabaseTarget
    engine: Engine

    def close(self) -> None:
        """Release pooled connections."""
        self.engine.dispose()


def open_database(loaded: LoadedConfig, *, access: Access = "write") -> DatabaseSession:
    """Resolve the URL from ``database.url_env`` and connect.

    The embedded demo database is used only when the variable is unset or empty and
    ``database.embedded_demo`` is on (built on first use, with a warning in the log).

    Args:
        loaded: the validated config.
        access: ``read`` for extraction only (a SQLite file is opened read-only), ``write``
            (default) to write into an existing database, ``create`` to create a SQLite file.

    Raises:
        DatabaseError: the variable is unset and ``database.embedded_demo`` is off (the
            message names the variable, where it was looked for and the fix); the URL is
            malformed; the database (or SQLite file) cannot be reached.
    """
    config = loaded.config.database
    try:
        target = resolve_target(config, loaded.base_dir)
    except DatabaseError as exc:
        if loaded.source != _NO_CONFIG_FILE or os.environ.get(config.url_env, "").strip():
            raise
        raise DatabaseError(
            f"{exc}. No config file was read: config.yaml is looked for in the working "
            f"directory ({Path.cwd()}); pass --config /path/to/config.yaml"
        ) from None
    if target.embedded:
        path = ensure_demo_database(loaded.path(config.embedded_path))
        logger.warning(
            "using the embedded demo database %s (synthetic data) because %s is not set and "
            "database.embedded_demo is on; to use your own database put "
            "%s=postgresql://user:password@host:5432/dbname in %s (see .env.example) or "
            "export it, and set database.embedded_demo: false",
            path,
            config.url_env,
            config.url_env,
            loaded.base_dir / ".env",
        )
    return DatabaseSession(target=target, engine=connect_engine(target, config, access=access))
