"""Shared fixtures: real SQLite and PostgreSQL databases (no mocks).

PostgreSQL comes from TEST_DATABASE_URL (default postgresql://postgres@127.0.0.1:5432/test).
Outside CI an unreachable server skips the PostgreSQL tests with the reason; with CI=true it
fails them, so CI can never pass by silently skipping.
"""

from __future__ import annotations

from numpy_setup import configure_numpy

configure_numpy()  # before anything imports NumPy, as the entry points do (numpy_setup)

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
from password_server import ClusterUnavailable, PasswordCluster, PasswordServer

from Database import DatabaseConfig, DatabaseTarget, connect_engine, resolve_target

DEFAULT_TEST_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/test"
PROJECT_ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Db:
    """A database for one test: target, engine and a schema prefix for table names."""

    target: DatabaseTarget
    engine: sa.Engine
    schema: str | None

    def table(self, name: str) -> str:
        """Qualified table name inside this test's schema."""
        return f"{self.schema}.{name}" if self.schema else name

    @property
    def url(self) -> str:
        """The full URL (with password) for child processes' environment."""
        return self.target.url.render_as_string(hide_password=False)


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


@pytest.fixture(scope="session")
def pg_target() -> DatabaseTarget:
    """The PostgreSQL server for tests, checked once per session."""
    url = os.environ.get("TEST_DATABASE_URL", DEFAULT_TEST_DATABASE_URL)
    target = resolve_target(DatabaseConfig(), PROJECT_ROOT, {"DB_URL": url})
    try:
        connect_engine(target, DatabaseConfig(connect_timeout_s=5)).dispose()
    except Exception as exc:  # the reason is what the user needs to see
        reason = f"PostgreSQL unavailable at {target.display}: {exc}"
        if _in_ci():
            pytest.fail(f"{reason} (CI=true: PostgreSQL tests must run, not skip)")
        pytest.skip(reason)
    return target


@pytest.fixture
def pg_db(pg_target: DatabaseTarget) -> Iterator[Db]:
    """A fresh schema on the test PostgreSQL server, dropped after the test."""
    engine = connect_engine(pg_target, DatabaseConfig())
    schema = f"mlbox_t_{uuid.uuid4().hex[:10]}"
    with engine.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield Db(target=pg_target, engine=engine, schema=schema)
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        engine.dispose()


@pytest.fixture
def sqlite_db(tmp_path: Path) -> Iterator[Db]:
    """A fresh SQLite file database."""
    target = DatabaseTarget(
        url=sa.URL.create("sqlite", database=str(tmp_path / "t.sqlite")), embedded=False
    )
    engine = connect_engine(target, DatabaseConfig(), access="create")
    try:
        yield Db(target=target, engine=engine, schema=None)
    finally:
        engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def any_db(request: pytest.FixtureRequest) -> Db:
    """Each test using this runs once on SQLite and once on PostgreSQL."""
    fixture = "sqlite_db" if request.param == "sqlite" else "pg_db"
    return request.getfixturevalue(fixture)


@pytest.fixture(scope="session")
def password_server() -> Iterator[PasswordServer]:
    """A private PostgreSQL cluster with password (scram-sha-256) authentication.

    For real authentication failures, which the shared trust-auth server cannot give. Outside
    CI, missing server binaries skip the tests with the reason; with CI=true they fail.
    """
    try:
        cluster = PasswordCluster()
        server = cluster.start()
    except ClusterUnavailable as exc:
        reason = f"cannot start a PostgreSQL cluster with password authentication: {exc}"
        if _in_ci():
            pytest.fail(f"{reason} (CI=true: these tests must run, not skip)")
        pytest.skip(reason)
    try:
        yield server
    finally:
        cluster.stop()
