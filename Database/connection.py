"""Resolving the database URL and opening connections with password-safe errors.

A URL can carry secrets in two places: the password of its user info
(``postgresql://user:pw@host/db``) and query parameters that libpq (or another driver) takes
as connection options (``?password=pw``, ``?sslpassword=...``). Both are masked wherever a URL
or a driver message is shown: :func:`mask_url` renders a URL for display, :func:`redact`
cleans any text.
"""

from __future__ import annotations

import functools
import logging
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import quote, quote_plus, unquote, unquote_plus, urlsplit

import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine

from .config import DatabaseConfig
from .errors import DatabaseError

__all__ = [
    "Access",
    "DatabaseTarget",
    "connect_engine",
    "database_errors",
    "mask_url",
    "redact",
    "resolve_target",
    "scrub",
    "url_secrets",
]

logger = logging.getLogger(__name__)

Access = Literal["read", "write", "create"]
"""How a run uses the database. On SQLite files: ``read`` opens an existing file read-only,
``write`` an existing file read-write, ``create`` creates the file (and its folder) if missing.
Other databases are opened the same way for all three."""

_SQLITE_MODES: dict[str, str] = {"read": "ro", "write": "rw", "create": "rwc"}

# Driver message fragment -> what to tell the user to do about it.
_HINTS: tuple[tuple[str, str], ...] = (
    ("password authentication failed", "check the user name and password in the URL"),
    ("no password supplied", "add the password to the URL or use trust/peer authentication"),
    ("does not exist", "check the database and user names in the URL (create them if needed)"),
    ("connection refused", "is the server running and listening on that host and port?"),
    ("could not translate host name", "check the host name in the URL"),
    ("timeout expired", "the server did not answer in time; check host, port and firewall"),
    ("unable to open database file", "check that the SQLite file's folder exists and is writable"),
    ("database is locked", "another process is writing this SQLite file; try again later"),
)


@dataclass(frozen=True)
class DatabaseTarget:
    """The database to use: its URL and whether it is the embedded demo database."""

    url: URL
    embedded: bool
    connect_timeout_s: int | None = None
    """``database.connect_timeout_s``: also given to the fast readers' own connections."""

    @property
    def dialect(self) -> str:
        """SQLAlchemy dialect name, e.g. ``postgresql`` or ``sqlite``."""
        return self.url.get_backend_name()

    @property
    def display(self) -> str:
        """The URL with every secret masked: safe for logs, errors and artifacts."""
        return mask_url(self.url)

    @property
    def libpq_uri(self) -> str:
        """``postgresql://...`` as libpq parses it, secrets included: for a driver, never shown.

        Every part is percent-encoded (a space as ``%20``: libpq refuses the ``+`` and the
        bare space that SQLAlchemy's rendering of query values may give).
        """
        url = self.url
        userinfo = ""
        if url.username:
            userinfo = quote(url.username, safe="")
            if url.password is not None:
                userinfo += ":" + quote(str(url.password), safe="")
            userinfo += "@"
        host = f"[{url.host}]" if url.host and ":" in url.host else url.host or ""
        port = f":{url.port}" if url.port else ""
        database = "/" + quote(url.database, safe="") if url.database else ""
        items = list(_query_items(url))
        if self.connect_timeout_s is not None and all(
            name != "connect_timeout" for name, _ in items
        ):  # the fast readers connect on their own: the same timeout as the engine's
            items.append(("connect_timeout", str(self.connect_timeout_s)))
        query = "&".join(f"{quote(name, safe='')}={quote(value, safe='')}" for name, value in items)
        return f"postgresql://{userinfo}{host}{port}{database}" + (f"?{query}" if query else "")


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
        The target; when the variable is unset or empty and ``config.embedded_demo`` is on,
        the embedded SQLite demo database.

    Raises:
        DatabaseError: the variable is unset or empty and ``config.embedded_demo`` is off (the
            message names the variable, where it was looked for and how to set it), or it
            holds something that is not a database URL.
    """
    env = os.environ if environ is None else environ
    raw = env.get(config.url_env, "").strip()
    if not raw:
        if not config.embedded_demo:
            raise DatabaseError(_missing_url(config.url_env, base_dir, config.url_env in env))
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
    return DatabaseTarget(url=url, embedded=False, connect_timeout_s=config.connect_timeout_s)


_SECRET_KEY = re.compile(r"password|passwd|pwd|secret|token", re.IGNORECASE)
"""Connection options whose value is a secret. libpq hides ``password`` and ``sslpassword``
(``PQconndefaults`` marks them ``*``; PostgreSQL 18 adds ``oauth_client_secret``); other
drivers use ``PWD``, ``*_token`` and the like, so any option name holding these words counts."""

_USERINFO = re.compile(r"(://[^:/@\s]*:)[^@\s]+@")
"""``scheme://user:password@`` in any text."""

_SECRET_PAIR = re.compile(
    r"\b(\w*(?:password|passwd|pwd|secret|token)\w*)(\s*=\s*)(?!\*\*\*)"
    r"('(?:[^'\\]|\\.)*'|[^\s&;,'\"]+)",
    re.IGNORECASE,
)
"""``password=...`` (any secret option name) in a URL query or a libpq conninfo string; a value
already masked is left alone, so redacting twice changes nothing."""

_MASK = "***"


def _is_secret_option(name: str) -> bool:
    return bool(_SECRET_KEY.search(name))


def _query_items(url: URL) -> Iterator[tuple[str, str]]:
    """``(name, value)`` for every query option, a repeated option once per value."""
    for name, value in url.query.items():
        for item in value if isinstance(value, tuple) else (value,):
            yield name, item


def url_secrets(url: URL | str) -> list[str]:
    """Every secret a database URL carries, decoded.

    Args:
        url: a parsed URL, or the URL text as configured.

    Returns:
        The user info password and the values of secret query options (``password``,
        ``sslpassword``, ...); empty when it carries none. Text that is not a URL gives
        what it seems to hold (a ``user:password@`` or ``password=`` part).
    """
    found: set[str] = set()
    if isinstance(url, str):
        try:
            url = sa.make_url(url)
        except (sa.exc.ArgumentError, ValueError):
            return sorted(_raw_secrets(url))
    if url.password:
        found.add(str(url.password))
    found.update(value for name, value in _query_items(url) if _is_secret_option(name))
    return sorted(secret for secret in found if secret)


def _raw_secrets(text: str) -> set[str]:
    """The secrets of text that looks like a URL but does not parse as one."""
    try:
        parts = urlsplit(text)
    except ValueError:  # e.g. an unbalanced "[" around the host
        return set()
    found = {unquote(parts.password)} if parts.password else set()
    for pair in parts.query.split("&"):
        name, _, value = pair.partition("=")
        if value and _is_secret_option(unquote_plus(name)):
            found.add(unquote_plus(value))
    return found


def _any_spelling(secret: str) -> str:
    """A pattern matching ``secret`` however it is percent-encoded, even partly.

    Each character may appear as itself or as its UTF-8 bytes in ``%XX`` form (a space also
    as ``+``), so ``p@ss w``, ``p%40ss+w`` and ``p%40ss w`` all match.
    """
    parts = []
    for char in secret:
        encoded = "".join(f"%{byte:02X}" for byte in char.encode("utf-8"))
        options = [re.escape(char), re.escape(encoded)] + (["\\+"] if char == " " else [])
        parts.append(f"(?:{'|'.join(options)})")
    return "".join(parts)


@functools.lru_cache(maxsize=32)
def _secrets_pattern(secrets: tuple[str, ...]) -> re.Pattern[str] | None:
    """One pattern for all secrets, longest first (a secret inside another is masked whole).

    Case-insensitive, for the hex digits of ``%xx``; masking a few more characters than
    needed is the safe side.
    """
    ordered = sorted({s for s in secrets if s}, key=len, reverse=True)
    if not ordered:
        return None
    return re.compile("|".join(_any_spelling(secret) for secret in ordered), re.IGNORECASE)


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """Mask ``secrets`` and any credential a URL or connection string in ``text`` shows.

    Every occurrence of a known secret, in any percent-encoding, becomes ``***``; then any
    ``scheme://user:...@`` password and any ``password=...``-like option (``sslpassword=``,
    ``PWD=``, quoted or not), known or not.
    """
    pattern = _secrets_pattern(tuple(sorted(secrets)))
    cleaned = text if pattern is None else pattern.sub(_MASK, text)
    cleaned = _USERINFO.sub(rf"\1{_MASK}@", cleaned)
    return _SECRET_PAIR.sub(rf"\1\2{_MASK}", cleaned)


def _missing_url(name: str, base_dir: Path, present: bool) -> str:
    dotenv = base_dir / ".env"
    if present:
        state = f"is empty (looked in the environment and in {dotenv})"
    else:
        found = "" if dotenv.is_file() else ", which does not exist"
        state = f"is not set (looked in the environment and in {dotenv}{found})"
    return (
        f"no database configured: environment variable {name} {state}; put "
        f"{name}=postgresql://user:password@host:5432/dbname in {dotenv} (see .env.example) "
        "or export it, or set database.embedded_demo: true to run on the synthetic demo database"
    )


def scrub(text: str, url: URL) -> str:
    """Remove every secret of ``url`` (and any credential of another URL) from ``text``."""
    return redact(text, url_secrets(url))


def mask_url(url: URL) -> str:
    """``url`` for display: its password and the values of secret query options as ``***``.

    e.g. ``postgresql+psycopg2://robot:***@db:5432/plant?sslmode=require&sslpassword=***``.
    """
    secrets = url_secrets(url)
    shown = url.set(query={}).render_as_string(hide_password=True)
    pairs = []
    for name, value in _query_items(url):
        masked = _MASK if _is_secret_option(name) else redact(value, secrets)
        pairs.append(f"{quote_plus(name)}={quote_plus(masked, safe='*')}")
    return f"{shown}?{'&'.join(pairs)}" if pairs else shown


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


def _sqlite_file(target: DatabaseTarget) -> Path | None:
    """The file of a plain SQLite file URL; None for other databases, ``:memory:`` and URLs
    that already choose their own SQLite URI options (``?uri=true``)."""
    database = target.url.database
    if target.dialect != "sqlite" or not database or database == ":memory:":
        return None
    if "uri" in target.url.query or database.startswith("file:"):
        return None
    return Path(os.path.abspath(database))


def _sqlite_url(url: URL, path: Path, access: Access, config: DatabaseConfig) -> URL:
    """``url`` as a SQLite URI with the open mode of ``access``; a missing file is an error
    unless creating, so a mistyped path never leaves an empty database or folders behind."""
    if access == "create":
        path.parent.mkdir(parents=True, exist_ok=True)
    elif not path.is_file():
        what = "is a folder, not a SQLite file" if path.is_dir() else "does not exist"
        raise DatabaseError(
            f"SQLite database file {path} {what}; nothing was created. Check the path in "
            f"{config.url_env}: sqlite:///relative/path is relative to the working directory "
            f"({Path.cwd()}), an absolute path takes four slashes "
            "(sqlite:////srv/data/plant.sqlite)"
        )
    return url.set(database=f"file:{quote(str(path))}").update_query_dict(
        {"uri": "true", "mode": _SQLITE_MODES[access]}
    )


def connect_engine(
    target: DatabaseTarget, config: DatabaseConfig, *, access: Access = "write"
) -> Engine:
    """Create an engine for ``target`` and check that a connection can be opened.

    Args:
        target: the database.
        config: the ``database`` section (timeouts).
        access: ``read`` / ``write`` need an existing SQLite file (opened read-only /
            read-write); ``create`` creates it. No effect on other databases.

    Raises:
        DatabaseError: the server is unreachable, the credentials are wrong, the database
            (or SQLite file) does not exist; the message names the masked URL and what to check.
    """
    connect_args: dict[str, object] = {}
    url = target.url
    if target.dialect == "postgresql":
        connect_args["connect_timeout"] = config.connect_timeout_s
    elif target.dialect == "sqlite":
        connect_args["timeout"] = config.connect_timeout_s
        sqlite_file = _sqlite_file(target)
        if sqlite_file is not None:
            url = _sqlite_url(url, sqlite_file, access, config)
    try:
        engine = sa.create_engine(url, connect_args=connect_args, pool_pre_ping=True)
    except (sa.exc.ArgumentError, ImportError) as exc:
        raise DatabaseError(
            f"cannot use database URL {target.display}: {scrub(str(exc), target.url)}"
        ) from None
    with database_errors(target, "connecting to the database"), engine.connect():
        pass
    logger.info("connected to %s", target.display)
    return engine
