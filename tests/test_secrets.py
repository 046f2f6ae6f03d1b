"""Secrets of the database URL never reach a log, an error, stdout or a file.

A URL carries secrets in its user info and in query options libpq accepts (``?password=``,
``?sslpassword=``). Each form is run through the real command line on the error path (a closed
port; a wrong password on a cluster that checks passwords) and on the success path (that
cluster, so the secret given in that form is really used), and stderr, ``--log-file`` and
``--json`` are searched for it.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest
import sqlalchemy as sa
import yaml
from clitools import Run, make_project, run_cli
from password_server import SUPERUSER_PASSWORD, PasswordServer

from Database import (
    DEMO_AXES,
    DatabaseConfig,
    connect_engine,
    demo_data,
    float_columns,
    resolve_target,
    write_chunks,
)
from Orchestration import load_config, load_environment

ROBOT_PASSWORD = "Robot-Plain-Secret-1"
SSL_KEY_PASSWORD = "Ssl-Key-Secret-2"
DECOY_PASSWORD = "Decoy-Userinfo-Secret-3"
# A fragment of each secret, free of URL-special characters: absent in every spelling.
FRAGMENTS = ("Robot-Plain-Secret", "Ssl-Key-Secret", "Decoy-Userinfo-Secret", "Sup3r")
ROWS = 1000
TRAIN_END = "2026-01-05T00:20:00Z"  # 1000 demo samples span ~31 minutes from 00:00


@dataclass(frozen=True)
class Form:
    """One way of putting the secrets into DB_URL, and how the URL must be shown."""

    url: Callable[[str], str]  # host:port -> URL
    shown: Callable[[str], str]  # host:port -> masked display


SUPER = quote(SUPERUSER_PASSWORD, safe="")
FORMS = {
    "userinfo": Form(
        lambda at: f"postgresql://robot:{ROBOT_PASSWORD}@{at}/postgres",
        lambda at: f"postgresql+psycopg2://robot:***@{at}/postgres",
    ),
    "query-password": Form(
        lambda at: f"postgresql://robot@{at}/postgres?password={ROBOT_PASSWORD}",
        lambda at: f"postgresql+psycopg2://robot@{at}/postgres?password=***",
    ),
    "query-sslpassword": Form(
        lambda at: (
            f"postgresql://robot@{at}/postgres?sslpassword={SSL_KEY_PASSWORD}"
            f"&password={ROBOT_PASSWORD}"
        ),
        lambda at: f"postgresql+psycopg2://robot@{at}/postgres?sslpassword=***&password=***",
    ),
    "percent-encoded": Form(
        lambda at: (
            f"postgresql://postgres:{SUPER}@{at}/postgres?password={quote_plus(SUPERUSER_PASSWORD)}"
        ),
        lambda at: f"postgresql+psycopg2://postgres:***@{at}/postgres?password=***",
    ),
    "both-at-once": Form(  # libpq takes the query's password over the user info's
        lambda at: (
            f"postgresql://robot:{DECOY_PASSWORD}@{at}/postgres?password={ROBOT_PASSWORD}"
            f"&sslpassword={SSL_KEY_PASSWORD}"
        ),
        lambda at: f"postgresql+psycopg2://robot:***@{at}/postgres?password=***&sslpassword=***",
    ),
}


def _assert_no_secret(*texts: str) -> None:
    for text in texts:
        for fragment in FRAGMENTS:
            assert fragment not in text, f"{fragment!r} leaked: {text[:2000]}"


def _run(tmp_path: Path, url: str, *args: str, script: str = "orchestrate.py") -> tuple[Run, str]:
    """Run the CLI with DB_URL=url and --log-file; returns the run and the log file's text."""
    config = tmp_path / "config.yaml"
    if not config.exists():
        make_project(tmp_path, "plots: {enabled: false}\n")
    log = tmp_path / "run.log"
    log.unlink(missing_ok=True)
    run = run_cli(script, *args, "--log-file", str(log), config=config, db_url=url)
    return run, log.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def auth_server(password_server: PasswordServer) -> PasswordServer:
    """The password cluster with a role ``robot`` and a demo table it may read."""
    target = resolve_target(DatabaseConfig(), Path("."), {"DB_URL": password_server.url()})
    engine = connect_engine(target, DatabaseConfig())
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(f"CREATE ROLE robot LOGIN PASSWORD '{ROBOT_PASSWORD}'"))
        columns = {"ts": sa.DateTime(timezone=True), **float_columns(DEMO_AXES)}
        write_chunks(engine, target, "robot_samples", columns, [demo_data(ROWS).samples])
        with engine.begin() as conn:
            conn.execute(sa.text("GRANT SELECT ON robot_samples TO robot"))
    finally:
        engine.dispose()
    return password_server


@pytest.mark.parametrize("form", sorted(FORMS))
def test_every_secret_is_masked_when_the_server_is_unreachable(tmp_path: Path, form: str) -> None:
    closed = "127.0.0.1:1"
    run, log = _run(tmp_path, FORMS[form].url(closed), "profile", "--json")
    assert run.code == 5, run.stderr
    status = run.json()["status"]
    assert status["code"] == "db-error"
    expected = f"connecting to the database ({FORMS[form].shown(closed)}) failed: "
    assert status["detail"].startswith(expected)
    assert "Connection refused" in status["detail"]
    assert expected in run.stderr and expected in log
    _assert_no_secret(run.stdout, run.stderr, log)


@pytest.mark.postgres
@pytest.mark.parametrize("form", sorted(FORMS))
def test_every_secret_is_masked_on_the_success_path(
    auth_server: PasswordServer, tmp_path: Path, form: str
) -> None:
    at = f"{auth_server.host}:{auth_server.port}"
    run, log = _run(tmp_path, FORMS[form].url(at), "profile", "--json")
    assert run.code == 0, run.stderr
    assert run.json()["profile"]["rows"] == ROWS  # the secret in this form opened the door
    connected = f"connected to {FORMS[form].shown(at)}"
    assert connected in run.stderr and connected in log
    _assert_no_secret(run.stdout, run.stderr, log)


@pytest.mark.postgres
def test_a_wrong_password_fails_with_db_error_and_no_secret(
    auth_server: PasswordServer, tmp_path: Path
) -> None:
    at = f"{auth_server.host}:{auth_server.port}"
    url = f"postgresql://robot:{DECOY_PASSWORD}@{at}/postgres?sslpassword={SSL_KEY_PASSWORD}"
    run, log = _run(tmp_path, url, "profile", "--json")
    assert run.code == 5, run.stderr
    detail = run.json()["status"]["detail"]
    assert 'password authentication failed for user "robot"' in detail
    assert detail.endswith("; check the user name and password in the URL")
    assert detail in log
    _assert_no_secret(run.stdout, run.stderr, log)


@pytest.mark.postgres
def test_training_and_scoring_use_the_reader_database_fast_path_names(
    auth_server: PasswordServer, tmp_path: Path
) -> None:
    """Also: the password given both ways, percent-encoded, reaches no file of the run."""
    url = FORMS["percent-encoded"].url(f"{auth_server.host}:{auth_server.port}")
    train_end = f"--set=data.train_end={TRAIN_END}"
    readers = {}
    for fast_path in ("true", "false"):
        tag = f"--set=registry.version_tag=fast-{fast_path}"
        run, log = _run(
            tmp_path, url, train_end, tag, f"--set=database.fast_path={fast_path}", script="main.py"
        )
        assert run.code == 0, run.stderr
        meta_file = tmp_path / "registry" / f"fast-{fast_path}" / "meta.yaml"
        meta = yaml.safe_load(meta_file.read_text(encoding="utf-8"))
        readers[fast_path] = meta["database"]["reader"]
        _assert_no_secret(run.stdout, run.stderr, log)
    assert readers == {"true": "copy", "false": "sqlalchemy"}

    # Scoring too: a run that ignored the flag would read through the fast path (COPY) here.
    run, log = _run(tmp_path, url, "score", "--version=fast-true", "--set=database.fast_path=false")
    assert run.code == 0, run.stderr
    assert log.count(" via sqlalchemy\n") == 1 and log.count(" via ") == 1
    _assert_no_secret(run.stdout, run.stderr, log)
    written = [path for path in tmp_path.rglob("*") if path.is_file()]
    assert any(path.name == "meta.yaml" for path in written)
    for path in written:
        _assert_no_secret(path.read_bytes().decode("utf-8", errors="replace"))


def test_log_messages_and_tracebacks_never_show_a_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(
        "DB_URL",
        "postgresql://robot:Hunter2-Secret@db:5432/plant?sslpassword=Key%2FSecret&password=Pw-X",
    )
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        config = tmp_path / "config.yaml"
        config.write_text("{}", encoding="utf-8")
        load_environment(load_config(config))
        log = logging.getLogger("test_secrets")
        log.error("connecting with %s", "postgresql://robot:Hunter2-Secret@db:5432/plant")
        log.error("decoded Key/Secret, as typed Key%2FSecret, lower case Key%2fSecret")
        log.error("conninfo host=other password='Unknown Secret' port=5432")
        try:
            raise RuntimeError("driver said: password Hunter2-Secret rejected, Pw-X too")
        except RuntimeError:
            log.exception("unexpected failure")
    finally:
        root.removeHandler(handler)
    text = stream.getvalue()
    for secret in ("Hunter2-Secret", "Key/Secret", "Key%2", "Pw-X", "Unknown Secret"):
        assert secret not in text
    assert "connecting with postgresql://robot:***@db:5432/plant" in text
    assert "decoded ***, as typed ***, lower case ***" in text
    assert "conninfo host=other password=*** port=5432" in text
    assert "RuntimeError: driver said: password *** rejected, *** too" in text
