"""Opening the configured database for a run (the embedded demo database only when asked)."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from dotenv import dotenv_values, load_dotenv
from sqlalchemy.engine import Engine

from Database import (
    Access,
    DatabaseError,
    DatabaseTarget,
    connect_engine,
    ensure_demo_database,
    redact,
    resolve_target,
    url_secrets,
)

from .config import LoadedConfig

__all__ = [
    "DatabaseSession",
    "database_secrets",
    "env_file_names",
    "load_environment",
    "mask_in_logs",
    "open_database",
    "task_environment",
]

logger = logging.getLogger(__name__)

_NO_CONFIG_FILE = "built-in defaults"
"""``LoadedConfig.source`` when no config file was found."""


class _RedactingFilter(logging.Filter):
    """Masks the given secrets, and any credential a URL or conninfo shows, in log records.

    Defence in depth: messages already show URLs masked; this catches anything that slips
    through (a driver message, a traceback) before a handler writes it.
    """

    def __init__(self, secrets: Sequence[str]) -> None:
        super().__init__()
        self._secrets = [s for s in secrets if s]

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message, self._secrets)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text, self._secrets)
        return True


def load_environment(loaded: LoadedConfig) -> None:
    """Load ``.env`` next to the config file and keep the database secrets out of all logs.

    Variables already set in the environment win over ``.env``. Every handler of the root
    logger gets a filter that masks the secrets of the URL in ``database.url_env`` (see
    :func:`database_secrets`) and any other credential a logged URL shows. Call it after
    configuring logging (the CLI and the notebook both do).
    """
    load_dotenv(loaded.base_dir / ".env", override=False)
    mask_in_logs(database_secrets(loaded))


def mask_in_logs(secrets: Sequence[str]) -> None:
    """Give every handler of the root logger a filter masking ``secrets`` and credentials."""
    for handler in logging.getLogger().handlers:
        handler.addFilter(_RedactingFilter(secrets))


def env_file_names(loaded: LoadedConfig) -> list[str]:
    """The names of the variables ``.env`` next to the config sets (none without one)."""
    return list(dotenv_values(loaded.base_dir / ".env"))


def task_environment(loaded: LoadedConfig) -> dict[str, str]:
    """The environment a fleet task resolves the database from, without changing this
    process's: ``.env`` next to the config, overridden by variables set in the environment.

    A Dask worker serves task after task, maybe of several projects; loading a project's
    ``.env`` into its ``os.environ`` would leave that project's URL for the next one.
    """
    found = {k: v for k, v in dotenv_values(loaded.base_dir / ".env").items() if v is not None}
    return {**found, **os.environ}


def database_secrets(loaded: LoadedConfig, environ: Mapping[str, str] | None = None) -> list[str]:
    """The secrets to mask: those of the URL in ``database.url_env`` and ``PGPASSWORD``.

    ``environ``: where to read them (default ``os.environ``).

    Returns:
        The URL's password and secret query options (``password``, ``sslpassword``, ...) in
        every spelling (see :func:`Database.url_secrets`), and the value of ``PGPASSWORD``;
        empty when there are none.
    """
    env = os.environ if environ is None else environ
    found = url_secrets(env.get(loaded.config.database.url_env, "").strip())
    libpq_password = env.get("PGPASSWORD", "")
    return [*found, libpq_password] if libpq_password else found


@dataclass(frozen=True)
class DatabaseSession:
    """The database of a run: where it is (masked for display) and an open engine."""

    target: DatabaseTarget
    engine: Engine

    def close(self) -> None:
        """Release pooled connections."""
        self.engine.dispose()


def open_database(
    loaded: LoadedConfig, *, access: Access = "write", environ: Mapping[str, str] | None = None
) -> DatabaseSession:
    """Resolve the URL from ``database.url_env`` and connect.

    The embedded demo database is used only when the variable is unset or empty and
    ``database.embedded_demo`` is on (built on first use, with a warning in the log).

    Args:
        loaded: the validated config.
        access: ``read`` for extraction only (a SQLite file is opened read-only), ``write``
            (default) to write into an existing database, ``create`` to create a SQLite file.
        environ: where ``database.url_env`` is looked up (default ``os.environ``).

    Raises:
        DatabaseError: the variable is unset and ``database.embedded_demo`` is off (the
            message names the variable, where it was looked for and the fix); the URL is
            malformed; the database (or SQLite file) cannot be reached.
    """
    config = loaded.config.database
    try:
        target = resolve_target(config, loaded.base_dir, environ)
    except DatabaseError as exc:
        env = os.environ if environ is None else environ
        if loaded.source != _NO_CONFIG_FILE or env.get(config.url_env, "").strip():
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
