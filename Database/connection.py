"""Resolving the database URL and opening connections with password-safe errors."""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine

from .config import DatabaseConfig
from .errors import DatabaseError

__all__ = ["DatabaseTarget", "connect_engine", "database_errors", "resolve_target", "scrub"]

logger = logging.getLogger(__name__)

# Driver message fragment -> what to tell the user to do about it.
_HINTS: tuple[tuple[str, str], ...] = (
    ("password authentication failed", "check the user name and password in the URL"),
    ("no password supplied", "add the password to the URL or use trust/peer authentication"),
    ("does not exist", "check the database and user names in the URL (create them if needed)"),
    ("connection refused", "is the server running and listening on that host and port?"),
    ("could not translate host name", "check the host name in the URL"),
    ("timeout expired", "the server did not answer in time; check host, port and firewall"),
    ("unable to open database file", "check that the SQLite file's folder exists and is writable"),
)


@dataclass(frozen=True)
class DatabaseTarget:
    """The database to use: its URL and whether it is the embedded demo database."""

    url: URL
    embedded: bool

    @property
    def dialect(self) -> str:
        """SQLAlchemy dialect name, e.g. ``postgresql`` or ``sqlite``."""
        return self.url.get_backend_name()

    @property
    def display(self) -> str:
        """The URL with its password masked: safe for logs, errors and artifacts."""
        return self.url.render_as_string(hide_password=True)


def resolve_target(
    config: DatabaseConfig, base_dir: Path, environ: Mapping[str, str] | None = None
) -> DatabaseTarget:
    """Pick the database from the environment variable named by ``config.url_env``.

    Args:
        config: the ``database`` config section.
        base_dir: folder that a relative ``embedded_path`` is resolved against (the config's).
        environ: environment to read; defaults to ``os.environ`` (``.env`` is loaded into it by
            the entry point, with variables already set winning).

    Returns:
        The target; when the variable is unset or empty, the embedded SQLite demo database.

    Raises:
        DatabaseError: the variable holds something that is not a database URL.
    """
    env = os.environ if environ is None else environ
    raw = env.get(config.url_env, "").strip()
    if not raw:
        path = (base_dir / config.embedded_path).resolve()
        return DatabaseTarget(url=URL.create("sqlite", database=str(path)), embedded=True)
    try:
        url = sa.make_url(raw)
        url.port  # noqa: B018 - a malformed port only fails when read
    except (sa.exc.ArgumentError, ValueError) as exc:
        raise DatabaseError(
            f"environment variable {config.url_env} does not hold a database URL; expected "
            "e.g. postgresql://user:password@host:5432/dbname"
        ) from exc
    if url.drivername == "postgresql":
        # SQLAlchemy 2.1 maps a bare postgresql:// to psycopg 3; the project ships psycopg2.
        url = url.set(drivername="postgresql+psycopg2")
    return DatabaseTarget(url=url, embedded=False)


def scrub(text: str, url: URL) -> str:
    """Remove the password of ``url`` (and any ``user:password@`` pair) from ``text``."""
    cleaned = text
    if url.password:
        cleaned = cleaned.replace(str(url.password), "***")
    return re.sub(r"(://[^:/@\s]+:)[^@\s]+@", r"\1***@", cleaned)


def _hint(message: str) -> str:
    lowered = message.lower()
    return next((hint for fragment, hint in _HINTS if fragment in lowered), "")


@contextmanager
def database_errors(target: DatabaseTarget, action: str) -> Iterator[None]:
    """Turn driver and SQLAlchemy errors raised inside the block into a scrubbed DatabaseError.

    Args:
        target: the database being used (for the masked URL in the message).
        action: what was being done, e.g. ``"reading table robot_samples"``; the message reads
            ``"<action> (<masked URL>) failed: <driver message>; <hint>"``.
    """
    try:
        yield
    except DatabaseError:
        raise
    except (sa.exc.SQLAlchemyError, OSError) as exc:
        original = getattr(exc, "orig", None) or exc
        detail = " ".join(str(original).split())
        detail = scrub(detail.split("[SQL:")[0].strip(), target.url)
        hint = _hint(detail)
        message = f"{action} ({target.display}) failed: {detail}"
        raise DatabaseError(f"{message}; {hint}" if hint else message) from None


def connect_engine(target: DatabaseTarget, config: DatabaseConfig) -> Engine:
    """Create an engine for ``target`` and check that a connection can be opened.

    Raises:
        DatabaseError: the server is unreachable, the credentials are wrong or the database
            does not exist; the message names the masked URL and what to check.
    """
    connect_args: dict[str, object] = {}
    if target.dialect == "postgresql":
        connect_args["connect_timeout"] = config.connect_timeout_s
    elif target.dialect == "sqlite":
        connect_args["timeout"] = config.connect_timeout_s
        Path(target.url.database or "").parent.mkdir(parents=True, exist_ok=True)
    try:
        engine = sa.create_engine(target.url, connect_args=connect_args, pool_pre_ping=True)
    except (sa.exc.ArgumentError, ImportError) as exc:
        raise DatabaseError(
            f"cannot use database URL {target.display}: {scrub(str(exc), target.url)}"
        ) from None
    with database_errors(target, "connecting to the database"), engine.connect():
        pass
    logger.info("connected to %s", target.display)
    return engine
