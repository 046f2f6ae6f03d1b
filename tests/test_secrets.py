"""The database password is masked in log messages and in logged tracebacks."""

from __future__ import annotations

import io
import logging
from pathlib import Path

import pytest

from Orchestration import load_config, load_environment
from Orchestration.context import secret_variables


def test_log_messages_and_tracebacks_never_show_the_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DB_URL", "postgresql://robot:Hunter2-Secret@db:5432/plant")
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
        try:
            raise RuntimeError("driver said: password Hunter2-Secret rejected")
        except RuntimeError:
            log.exception("unexpected failure")
    finally:
        root.removeHandler(handler)
    text = stream.getvalue()
    assert "Hunter2-Secret" not in text
    assert "connecting with postgresql://robot:***@db:5432/plant" in text
    assert "RuntimeError: driver said: password *** rejected" in text


def test_secret_variables_name_everything_a_helper_process_must_not_get(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PLANT_DB", "postgresql://robot:Hunter2-Secret@db:5432/plant")
    monkeypatch.setenv("BACKUP_DSN", "host=db password=Hunter2-Secret")
    monkeypatch.setenv("SHIFT", "night")
    (tmp_path / ".env").write_text("API_TOKEN=abc\nPLANT_DB=ignored, the environment wins\n")
    config = tmp_path / "config.yaml"
    config.write_text("database: {url_env: PLANT_DB}\n", encoding="utf-8")
    names = secret_variables(load_config(config))
    assert names == ["API_TOKEN", "BACKUP_DSN", "PGPASSWORD", "PLANT_DB"]
