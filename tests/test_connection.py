"""Database URLs and connection errors: every secret masked, every failure with its hint.

Failures are real: a closed port, a host name that cannot resolve, an unknown database on the
shared server, and a wrong password on a private cluster that checks passwords.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from password_server import SUPERUSER_PASSWORD, PasswordServer

from Database import (
    DatabaseConfig,
    DatabaseError,
    DatabaseTarget,
    connect_engine,
    redact,
    resolve_target,
    url_secrets,
)


def _target(url: str) -> DatabaseTarget:
    return resolve_target(DatabaseConfig(), Path("."), {"DB_URL": url})


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (
            "postgresql://robot:Hunter2-x@db:5432/plant",
            "postgresql+psycopg2://robot:***@db:5432/plant",
        ),
        (
            "postgresql://robot@db:5432/plant?password=Hunter2-x&sslmode=require",
            "postgresql+psycopg2://robot@db:5432/plant?password=***&sslmode=require",
        ),
        (
            "postgresql://robot@db/plant?sslpassword=Key-Pass-9&sslkey=/keys/robot.key",
            "postgresql+psycopg2://robot@db/plant?sslpassword=***&sslkey=%2Fkeys%2Frobot.key",
        ),
        (
            "postgresql://robot:p%40ss%2Fw@db/plant?password=a%26b%3Dc",
            "postgresql+psycopg2://robot:***@db/plant?password=***",
        ),
        (
            "postgresql://robot:Userinfo-1@db/plant?password=Query-2&sslpassword=Key-3",
            "postgresql+psycopg2://robot:***@db/plant?password=***&sslpassword=***",
        ),
        (
            "postgresql://robot@db/plant?oauth_client_secret=Oauth-4&password=A-5&password=B-6",
            "postgresql+psycopg2://robot@db/plant?oauth_client_secret=***&password=***&password=***",
        ),
    ],
)
def test_a_url_is_shown_with_every_secret_masked(url: str, shown: str) -> None:
    assert _target(url).display == shown


def test_url_secrets_lists_the_decoded_secrets_only() -> None:
    secrets = url_secrets("postgresql://robot:p%40ss@db/plant?password=a%2fb+c&sslmode=require")
    assert secrets == ["a/b c", "p@ss"]
    assert url_secrets("postgresql://robot@db/plant?sslpassword=k&PWD=x") == ["k", "x"]
    assert url_secrets("postgresql://robot@db/plant") == []


def test_the_driver_gets_every_part_percent_encoded() -> None:
    target = _target(
        "postgresql://ro%20bot:p%40ss%2Fw+x@db:5432/my%20db?password=a%26b+c&sslmode=require"
    )
    assert target.libpq_uri == (
        "postgresql://ro%20bot:p%40ss%2Fw%2Bx@db:5432/my%20db?password=a%26b%20c&sslmode=require"
        "&connect_timeout=10"  # database.connect_timeout_s, for the fast readers' connections
    )


def test_the_fast_readers_take_the_configured_connect_timeout_unless_the_url_has_one() -> None:
    config = DatabaseConfig(connect_timeout_s=3)
    target = resolve_target(config, Path("."), {"DB_URL": "postgresql://robot@db/plant"})
    assert target.libpq_uri == "postgresql://robot@db/plant?connect_timeout=3"
    own = resolve_target(
        config, Path("."), {"DB_URL": "postgresql://robot@db/plant?connect_timeout=25"}
    )
    assert own.libpq_uri == "postgresql://robot@db/plant?connect_timeout=25"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "tried postgresql://robot:Hunter2@db/plant and host=db password='two words' port=5",
            "tried postgresql://robot:***@db/plant and host=db password=*** port=5",
        ),
        ("DRIVER=x;SERVER=db;UID=robot;PWD=Hunter2;", "DRIVER=x;SERVER=db;UID=robot;PWD=***;"),
        (
            "tried db/plant?sslpassword=Key-9&password=Pw-8 and failed",
            "tried db/plant?sslpassword=***&password=*** and failed",
        ),
        ("password authentication failed for user", "password authentication failed for user"),
    ],
)
def test_redact_masks_credentials_of_any_url_or_conninfo(text: str, expected: str) -> None:
    assert redact(text) == expected
    assert redact(expected) == expected  # redacting twice changes nothing


def test_redact_masks_known_secrets_in_any_spelling() -> None:
    secrets = url_secrets("postgresql://robot@db/plant?password=a%26b+c%2F")
    assert secrets == ["a&b c/"]
    text = "got 'a&b c/', sent a%26b+c%2F, echoed a%26b%20c%2f, half-encoded a%26b c/."
    assert redact(text, secrets) == "got '***', sent ***, echoed ***, half-encoded ***."


@pytest.mark.parametrize(
    ("url", "driver_says", "hint"),
    [
        (
            "postgresql://postgres:s3cr3t-pw@127.0.0.1:1/test",
            "Connection refused",
            "is the server running and listening on that host and port?",
        ),
        (
            "postgresql://postgres@no-such-host.invalid:5432/test?password=s3cr3t-pw",
            "could not translate host name",
            "check the host name in the URL",
        ),
    ],
)
def test_an_unreachable_server_is_named_with_its_hint(
    url: str, driver_says: str, hint: str
) -> None:
    with pytest.raises(DatabaseError, match="connecting to the database") as caught:
        connect_engine(_target(url), DatabaseConfig(connect_timeout_s=30))
    message = str(caught.value)
    assert driver_says in message
    assert message.endswith(f"; {hint}")
    assert "s3cr3t-pw" not in message and "***" in message


@pytest.mark.postgres
def test_an_unknown_database_is_named_with_its_hint(pg_target: DatabaseTarget) -> None:
    url = pg_target.url.set(database="no_such_db_xyz", password="s3cr3t-pw")
    target = DatabaseTarget(url=url, embedded=False)
    with pytest.raises(DatabaseError, match='database "no_such_db_xyz" does not exist') as caught:
        connect_engine(target, DatabaseConfig(connect_timeout_s=30))
    assert str(caught.value).endswith(
        "; check the database and user names in the URL (create them if needed)"
    )
    assert "s3cr3t-pw" not in str(caught.value)


@pytest.mark.postgres
@pytest.mark.parametrize("form", ["userinfo", "query"])
def test_a_wrong_password_is_a_real_authentication_failure_with_its_hint(
    password_server: PasswordServer, form: str
) -> None:
    wrong = "Wrong-Pass/word 7"
    url = (
        password_server.url(password=wrong)
        if form == "userinfo"
        else password_server.url(password=None) + "?password=Wrong-Pass%2Fword+7"
    )
    with pytest.raises(
        DatabaseError, match='password authentication failed for user "postgres"'
    ) as caught:
        connect_engine(_target(url), DatabaseConfig(connect_timeout_s=30))
    message = str(caught.value)
    assert message.endswith("; check the user name and password in the URL")
    for spelling in (wrong, "Wrong-Pass%2Fword", "Wrong-Pass/word", SUPERUSER_PASSWORD):
        assert spelling not in message
    # The right password opens the same server: the failure above was the password alone.
    connect_engine(_target(password_server.url()), DatabaseConfig()).dispose()
