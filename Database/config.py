"""Configuration of the database connection (the ``database`` section of config.yaml)."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = ["DatabaseConfig"]

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class DatabaseConfig(BaseModel):
    """Where the data lives. The URL itself is a secret and is never part of the config."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url_env: str = Field(
        "DB_URL",
        description="Name of the environment variable (or .env entry) holding the SQLAlchemy "
        "database URL. Unset or empty: an error (db-error), unless embedded_demo is true.",
    )
    embedded_demo: bool = Field(
        False,
        description="Use the embedded SQLite demo database when the url_env variable is unset "
        "or empty (the shipped config.yaml turns it on for a first run). Off: a missing URL "
        "is an error, so a production run never trains on synthetic data by surprise.",
    )
    embedded_path: str = Field(
        "out/demo.sqlite",
        description="SQLite file of the embedded demo database, relative to the config file.",
    )
    fast_path: bool = Field(
        True,
        description="On PostgreSQL, read windows by binary COPY (parsed by NumPy for WIDE "
        "timestamp + DOUBLE PRECISION tables, else through the Arrow-native ADBC driver) "
        "instead of row-by-row DB-API fetching.",
    )
    connect_timeout_s: int = Field(
        10, ge=1, le=600, description="Seconds to wait for a connection before giving up."
    )

    @field_validator("url_env")
    @classmethod
    def _env_name(cls, value: str) -> str:
        if not _ENV_NAME.match(value):
            # Never echo the value: a URL put here by mistake may carry a password.
            looks_like = "a URL" if "://" in value else "not a variable name"
            raise ValueError(
                f"must be the name of an environment variable (letters, digits, _), got "
                f"{looks_like}; put the URL itself in .env as DB_URL=..., never in config.yaml"
            )
        return value
