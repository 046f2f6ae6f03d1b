"""Aliases of a lineage: champion, previous and pins, their files, their checks, the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from clitools import make_project, run_cli
from conftest import Db
from scoring_helpers import append_samples, loaded_config, publish_linear_version, use_database

from ModelRegistry import (
    AliasError,
    InvalidTagError,
    ModelRegistry,
    RegistryConfig,
    validate_version_tag,
)
from Orchestration.scoring import run_scoring


def _registry(tmp_path: Path, versions: int = 3) -> ModelRegistry:
    root = tmp_path / "registry"
    for _ in range(versions):
        publish_linear_version(root, ["a", "b"])
    return ModelRegistry(root)


def test_promote_rollback_pin_unpin_round_trip(tmp_path: Path) -> None:
    registry = _registry(tmp_path)
    assert registry.aliases().to_dict() == {"champion": None, "previous": None, "pins": []}
    assert registry.resolve("champion").name == "v3"  # no champion yet: the newest version

    assert registry.promote("v1").to_dict() == {"champion": "v1", "previous": None, "pins": []}
    assert registry.promote("v2").to_dict() == {"champion": "v2", "previous": "v1", "pins": []}
    assert registry.promote("v2").to_dict() == {"champion": "v2", "previous": "v1", "pins": []}
    assert registry.rollback().to_dict() == {"champion": "v1", "previous": "v2", "pins": []}
    assert registry.rollback().to_dict() == {"champion": "v2", "previous": "v1", "pins": []}
    assert registry.pin("v3").pins == ("v3",)
    assert registry.pin("v1").pins == ("v1", "v3")
    assert registry.pin("v3", pinned=False).pins == ("v1",)

    aliases = registry.root_dir / "aliases"
    assert (aliases / "champion").read_text() == "v2\n"
    assert (aliases / "previous").read_text() == "v1\n"
    assert sorted(p.name for p in (aliases / "pins").iterdir()) == ["v1"]
    assert registry.resolve("champion").name == "v2"
    assert registry.resolve("previous").name == "v1"
    assert registry.resolve("latest").name == "v3"  # latest stays the newest version
    assert [v.version for v in registry.list_versions()] == ["v1", "v2", "v3"]
    assert registry.aliases().marks("v1") == ["previous", "pinned"]
    # promote records why, beside the versions (versions themselves stay untouched)
    registry.promote("v3", decision={"promoted": True, "reason": "by hand"})
    assert registry.decision("v3") == {"promoted": True, "reason": "by hand"}
    assert registry.decision("v1") is None
    assert registry.load("v3").verified


def test_alias_operations_that_cannot_be_done_say_why(tmp_path: Path) -> None:
    registry = _registry(tmp_path, versions=1)
    with pytest.raises(AliasError, match=r"nothing to roll back to .* no `previous` version"):
        registry.rollback()
    with pytest.raises(AliasError, match="has no `previous` version yet"):
        registry.resolve("previous")
    with pytest.raises(AliasError, match=r"version v1 of .* is not pinned \(pinned: none\)"):
        registry.pin("v1", pinned=False)
    with pytest.raises(LookupError, match="model version 'v7' not found"):
        registry.promote("v7")
    assert not (registry.root_dir / "aliases" / "champion").exists()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("v9\n", r"names version 'v9', which is not a published version"),
        ("../v1\n", r"does not hold one version tag"),
        ("v1\nv2\n", r"does not hold one version tag"),
    ],
)
def test_a_broken_alias_file_is_refused_with_the_fix(
    tmp_path: Path, content: str, message: str
) -> None:
    registry = _registry(tmp_path, versions=1)
    registry.promote("v1")
    (registry.root_dir / "aliases" / "champion").write_text(content)
    with pytest.raises(AliasError, match=message + r".*registry promote VERSION"):
        registry.resolve("champion")


def test_a_promoted_version_that_fails_verification_is_refused(tmp_path: Path) -> None:
    registry = _registry(tmp_path, versions=2)
    registry.promote("v1")
    (registry.root_dir / "v2" / "thresholds.json").write_text("{}")
    with pytest.raises(ValueError, match=r"failed verification .*modified: thresholds\.json"):
        registry.promote("v2")
    assert registry.aliases().champion == "v1"


def test_the_version_a_process_just_published_is_promoted_on_its_publish_hashes(
    tmp_path: Path,
) -> None:
    """``published`` (what publish returned in this process) stands for the verification of
    that version only: its files are not read again; any other version is verified."""
    registry = ModelRegistry(tmp_path / "registry")
    first = registry.publish({"thresholds.json": b"{}"}, meta={}, run_id="r1")
    second = registry.publish({"thresholds.json": b"{}"}, meta={}, run_id="r2")
    assert registry.promote("v1", published=first).to_dict() == {
        "champion": "v1",
        "previous": None,
        "pins": [],
    }
    (second.path / "thresholds.json").write_text('{"edited": 1}')
    with pytest.raises(ValueError, match=r"failed verification .*modified: thresholds\.json"):
        registry.promote("v2", published=first)  # first names v1: v2 is verified
    with pytest.raises(ValueError, match=r"failed verification .*modified: thresholds\.json"):
        registry.promote("v2")
    assert registry.aliases().champion == "v1"
    registry.promote("v2", published=second)  # its publish hashes are trusted
    assert registry.aliases().to_dict() == {"champion": "v2", "previous": "v1", "pins": []}
    with pytest.raises(ValueError, match=r"failed verification"):
        registry.load("champion")  # scoring's load still refuses the edited file


@pytest.mark.parametrize("tag", ["champion", "Previous", "aliases"])
def test_alias_names_are_not_version_tags(tag: str) -> None:
    with pytest.raises(ValueError, match="reserved for the registry's aliases"):
        RegistryConfig(version_tag=tag)
    with pytest.raises(InvalidTagError, match="reserved for the registry's aliases"):
        validate_version_tag(tag)


def test_scoring_uses_the_champion_unless_a_version_is_given(
    sqlite_db: Db, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_database(sqlite_db, monkeypatch)
    registry = _registry(tmp_path, versions=2)
    append_samples(sqlite_db, "s", {"a": [0.0] * 4, "b": [0.0] * 4})
    loaded = loaded_config(sqlite_db, tmp_path)
    assert run_scoring(loaded).version == "v2"  # no champion yet: the newest
    registry.promote("v1")
    assert run_scoring(loaded).version == "v1"
    assert run_scoring(loaded, version="v2").version == "v2"
    assert run_scoring(loaded, version="latest").version == "v2"


def test_cli_promote_rollback_pin_unpin_and_diff(tmp_path: Path) -> None:
    config = make_project(tmp_path)
    root = tmp_path / "registry"
    publish_linear_version(root, ["a", "b"])
    publish_linear_version(root, ["a", "b"], t_long=5)

    def registry(*args: str) -> dict:
        run = run_cli("orchestrate.py", "registry", *args, "--json", config=config)
        assert run.code == 0, run.stderr
        return run.json()

    assert registry("promote", "v1")["aliases"] == {
        "champion": "v1",
        "previous": None,
        "pins": [],
    }
    assert registry("promote", "v2")["aliases"]["previous"] == "v1"
    assert registry("rollback")["aliases"] == {"champion": "v1", "previous": "v2", "pins": []}
    assert registry("pin", "v2")["aliases"]["pins"] == ["v2"]
    assert registry("unpin", "v2")["aliases"]["pins"] == []
    diff = registry("diff", "v1", "v2")
    assert diff["versions"] == ["v1", "v2"]
    assert diff["changes"] == {"a": {"T_long_steps": [2, 5]}, "b": {"T_long_steps": [2, 5]}}
    text = run_cli("orchestrate.py", "registry", "diff", "v1", "v2", config=config).stdout
    assert "  a: MinC 1; MaxC 2; T_long_steps 2 -> 5 *; T_short_steps 2\n" in text

    failed = run_cli("orchestrate.py", "registry", "unpin", "v1", "--json", config=config)
    assert failed.code == 8  # registry-error, with what and how to fix it
    assert "v1" in json.loads(failed.stdout)["status"]["detail"]
    assert "is not pinned" in failed.stderr


def test_cli_lifecycle_in_a_fleet_needs_an_asset(tmp_path: Path) -> None:
    config = make_project(tmp_path, "data: {asset_col: robot_id}\n")
    run = run_cli("orchestrate.py", "registry", "rollback", config=config)
    assert run.code == 2
    assert "name one with --asset ID" in run.stderr


@pytest.mark.parametrize("action", ["promote", "pin"])
def test_an_alias_never_names_a_version_removed_while_it_waited_for_the_lock(
    tmp_path: Path, action: str
) -> None:
    import shutil
    import threading

    from filelock import FileLock

    from ModelRegistry import VersionNotFoundError

    registry = _registry(tmp_path, versions=2)
    registry.promote("v1")
    outcome: list[BaseException | None] = []

    def act() -> None:
        try:
            getattr(registry, action)("v2")
            outcome.append(None)
        except BaseException as exc:
            outcome.append(exc)

    with FileLock(registry.root_dir / ".lock"):  # a gc holds the lock ...
        worker = threading.Thread(target=act)
        worker.start()
        worker.join(timeout=0.5)  # ... while the call waits (whether it got there yet or not)
        shutil.rmtree(registry.root_dir / "v2")  # ... and removes v2
    worker.join(timeout=120)
    assert isinstance(outcome[0], VersionNotFoundError), outcome
    aliases = registry.aliases()
    assert (aliases.champion, aliases.pins) == ("v1", ())
