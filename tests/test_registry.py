"""Tests for ModelRegistry: layout, versioning, tags, atomic latest, crash safety, concurrency."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pydantic
import pytest
import yaml
from filelock import FileLock
from fstools import full_disk, immutable

import ModelRegistry.registry as registry_module
from ModelRegistry import (
    ArtifactNotFoundError,
    ChecksumError,
    InvalidArtifactError,
    InvalidTagError,
    MetadataError,
    ModelRegistry,
    PublishedVersion,
    RegistryConfig,
    RegistryLockError,
    RegistryStorageError,
    VersionExistsError,
    VersionNotFoundError,
)

REPO_ROOT = Path(__file__).resolve().parents[1]
WORKER = Path(__file__).resolve().parent / "registry_helpers" / "publish_worker.py"

MODELS_JSON = b'{"axis1": {"type": "linear", "coef": [1.5, -0.25]}}'
THRESHOLDS = {"axis1": {"MinC": 7.31, "MaxC": 19.13, "T_long_steps": 3, "T_short_steps": 2}}
META = {
    "config": {"model": {"type": "linear"}, "registry": {"version_tag": "auto"}},
    "database": {"dialect": "sqlite", "table": "robot_a"},
    "data": {
        "rows": 1200,
        "start": "2024-01-01T00:00:00+00:00",
        "end": "2024-01-02T00:00:00+00:00",
    },
    "axes": ["axis1", "axis2"],
    "dt_seconds": 1.891,
    "libraries": {"pandas": "3.1.0"},
    "code_revision": "abc1234",
    "durations_s": {"extract": 0.12, "train": 0.5},
}


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def artifacts(n: int = 0) -> dict[str, bytes]:
    """A small, distinct artifact set; ``n`` makes the content of each publish unique."""
    return {
        "models.json": MODELS_JSON,
        "thresholds.json": json.dumps(THRESHOLDS).encode(),
        "metrics.csv": f"axis,r2\naxis1,0.9{n}\n".encode(),
        "plots/axis1_fit.png": b"\x89PNG fit of run %d" % n,
    }


def publish(registry: ModelRegistry, n: int = 0, **kwargs: Any) -> PublishedVersion:
    kwargs.setdefault("meta", META)
    kwargs.setdefault("run_id", f"run-{n}")
    return registry.publish(artifacts(n), **kwargs)


def snapshot(folder: Path) -> dict[str, bytes]:
    return {
        path.relative_to(folder).as_posix(): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def staging_entries(root: Path) -> list[str]:
    staging = root / ".staging"
    return sorted(p.name for p in staging.iterdir()) if staging.exists() else []


@pytest.fixture
def registry(tmp_path: Path) -> ModelRegistry:
    return ModelRegistry(tmp_path / "registry")


# ---------------------------------------------------------------------- publish layout and meta


def test_publish_writes_every_artifact_meta_and_a_manifest_of_them_all(
    registry: ModelRegistry, tmp_path: Path
) -> None:
    plot = tmp_path / "axis1_fit.png"
    plot.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4096)
    files = {**artifacts(), "plots/axis1_fit.png": plot}

    before = datetime.now(timezone.utc)
    published = registry.publish(files, meta=META, run_id="run-42")
    after = datetime.now(timezone.utc)

    version_dir = registry.root_dir / "v1"
    assert published.version == "v1"
    assert published.path == version_dir
    assert published.run_id == "run-42"
    assert before <= published.created_at <= after
    assert published.created_at.tzinfo == timezone.utc

    expected = {**artifacts(), "plots/axis1_fit.png": plot.read_bytes()}
    on_disk = snapshot(version_dir)
    meta_bytes = on_disk.pop("meta.yaml")
    manifest = on_disk.pop("manifest")
    manifest_hash = on_disk.pop("manifest.sha256")
    assert on_disk == expected

    meta = yaml.safe_load(meta_bytes.decode())
    assert list(meta) == ["version", "run_id", "created_at", *META]
    assert meta["version"] == "v1"
    assert meta["run_id"] == "run-42"
    assert datetime.fromisoformat(meta["created_at"]) == published.created_at
    assert {key: meta[key] for key in META} == META
    # sha256sum's format: every file, meta.yaml included, sorted by name; then the manifest's.
    listed = {**expected, "meta.yaml": meta_bytes}
    assert manifest.decode() == "".join(
        f"{sha256(listed[name])}  {name}\n" for name in sorted(listed)
    )
    assert manifest_hash.decode() == f"{sha256(manifest)}  manifest\n"
    assert staging_entries(registry.root_dir) == []


@pytest.mark.parametrize(
    "meta",
    [
        {},
        META,
        {
            "nested": {"list": [1, 2.5, None, {"k": "v"}], "empty": {}, "none": []},
            "text": "ünïcode: 'quoted' and \"double\" # not a comment\n second line",
            "long": "word " * 60,
            "lists": [[1, 2], [3, [4, {"five": 5}]]],
            "flag": True,
        },
    ],
)
def test_meta_yaml_is_the_dump_of_the_whole_document(
    registry: ModelRegistry, meta: dict[str, Any]
) -> None:
    """The caller's part is dumped once (when checked) after the registry's own keys: the
    file is byte for byte the block-style dump of the whole document."""
    published = registry.publish(artifacts(), meta=meta, run_id="run-7")
    document = {
        "version": "v1",
        "run_id": "run-7",
        "created_at": published.created_at.isoformat(timespec="microseconds"),
        **meta,
    }
    expected = yaml.dump(
        document,
        Dumper=getattr(yaml, "CSafeDumper", yaml.SafeDumper),
        sort_keys=False,
        allow_unicode=True,
        default_flow_style=False,
    )
    assert (published.path / "meta.yaml").read_text(encoding="utf-8") == expected
    assert registry.load("v1").meta == yaml.safe_load(expected)


@pytest.mark.skipif(shutil.which("sha256sum") is None, reason="needs GNU coreutils sha256sum")
def test_a_version_verifies_with_sha256sum_by_hand(registry: ModelRegistry) -> None:
    version = publish(registry, 1).path
    for listing in ("manifest.sha256", "manifest"):
        done = subprocess.run(
            ["sha256sum", "--strict", "-c", listing], cwd=version, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stdout + done.stderr
    assert "meta.yaml: OK" in done.stdout
    (version / "meta.yaml").write_text("tampered\n")
    done = subprocess.run(["sha256sum", "-c", "manifest"], cwd=version, capture_output=True)
    assert done.returncode == 1


def test_publish_checks_everything_before_writing(registry: ModelRegistry) -> None:
    with pytest.raises(InvalidTagError, match=r"^version tag 'a/b' contains '/'; only "):
        publish(registry, version_tag="a/b")
    with pytest.raises(MetadataError, match="run_id must be a non-empty string"):
        publish(registry, run_id="  ")
    assert not registry.root_dir.exists()


# ---------------------------------------------------------------------- versioning and tags


def test_auto_versions_count_numerically_past_nine(registry: ModelRegistry) -> None:
    versions = [publish(registry, n).version for n in range(1, 12)]

    assert versions == [f"v{n}" for n in range(1, 12)]
    assert [s.version for s in registry.list_versions()] == versions
    assert os.readlink(registry.root_dir / "latest") == "v11"
    assert registry.load().meta["run_id"] == "run-11"


def test_auto_version_follows_the_highest_number_even_if_explicit(registry: ModelRegistry) -> None:
    publish(registry, 1)
    publish(registry, 2, version_tag="v9")
    publish(registry, 3, version_tag="release-1")

    assert publish(registry, 4).version == "v10"
    assert [s.version for s in registry.list_versions()] == ["v1", "v9", "v10", "release-1"]


def test_latest_is_a_relative_symlink_to_the_newest_after_each_publish(
    registry: ModelRegistry,
) -> None:
    latest = registry.root_dir / "latest"
    for n, tag in enumerate(["auto", "line3-2024.06", "auto"], start=1):
        published = publish(registry, n, version_tag=tag)
        assert latest.is_symlink()
        assert os.readlink(latest) == published.version  # relative: survives moving the root
        assert latest.resolve() == published.path.resolve()
        assert registry.resolve() == published.path
        assert registry.load().read_bytes("metrics.csv") == artifacts(n)["metrics.csv"]
    assert sorted(p.name for p in registry.root_dir.iterdir()) == [
        ".lock",
        ".staging",
        "latest",
        "line3-2024.06",
        "v1",
        "v2",
    ]


def test_existing_explicit_tag_is_refused_and_left_untouched(registry: ModelRegistry) -> None:
    publish(registry, 1, version_tag="release-1")
    before = snapshot(registry.root_dir / "release-1")

    with pytest.raises(VersionExistsError, match=r"'release-1' already exists at .*release-1; "):
        publish(registry, 2, version_tag="release-1")

    assert snapshot(registry.root_dir / "release-1") == before
    assert os.readlink(registry.root_dir / "latest") == "release-1"
    assert staging_entries(registry.root_dir) == []


def test_tag_taken_while_writing_is_refused_at_commit(registry: ModelRegistry) -> None:
    publish(registry, 1)

    def someone_else_takes_the_tag(staging: Path) -> None:
        publish(registry, 2, version_tag="rc1")

    with pytest.raises(VersionExistsError, match="'rc1' already exists"):
        publish(registry, 3, version_tag="rc1", _before_commit=someone_else_takes_the_tag)

    assert registry.load("rc1").meta["run_id"] == "run-2"
    assert os.readlink(registry.root_dir / "latest") == "rc1"
    assert staging_entries(registry.root_dir) == []


INVALID_TAGS = [
    ("../x", r"contains '/'.*never point outside the registry folder"),
    ("a/b", r"contains '/'"),
    ("a\\b", r"contains '\\\\'"),
    ("v 1", r"contains ' '"),
    ("latest", r"'latest' is reserved for the pointer"),
    ("LATEST", r"'LATEST' is reserved for the pointer"),
    (".hidden", r"'.hidden' starts with '.'"),
    ("..", r"'..' starts with '.'"),
    ("", r"version tag is empty"),
    ("a" * 65, r"is 65 characters long, more than the 64 allowed"),
    ("vé", r"contains 'é'"),
]


@pytest.mark.parametrize(("tag", "message"), INVALID_TAGS)
def test_invalid_tags_are_refused_everywhere(
    registry: ModelRegistry, tag: str, message: str
) -> None:
    with pytest.raises(InvalidTagError, match=message):
        publish(registry, version_tag=tag)
    with pytest.raises(pydantic.ValidationError, match=message):
        RegistryConfig(version_tag=tag)
    if tag != "latest":  # resolve("latest") follows the pointer
        with pytest.raises(InvalidTagError, match=message):
            registry.resolve(tag)
    assert not registry.root_dir.exists()


@pytest.mark.parametrize("tag", ["auto", "v12", "line3-2024.06", "_x", "a" * 64, "latest2"])
def test_valid_tags_are_accepted_by_config(tag: str) -> None:
    assert RegistryConfig(version_tag=tag).version_tag == tag


def test_registry_config_defaults_and_strictness() -> None:
    config = RegistryConfig()
    # The seed's registry root; a lock wait of one minute.
    assert (config.root_dir, config.version_tag, config.lock_timeout_s) == (
        "ModelRegistry/artifacts",
        "auto",
        60.0,
    )
    assert ModelRegistry("anywhere").lock_timeout == config.lock_timeout_s
    assert all(field.description for field in RegistryConfig.model_fields.values())
    with pytest.raises(pydantic.ValidationError, match="Extra inputs are not permitted"):
        RegistryConfig(root="x")
    with pytest.raises(pydantic.ValidationError, match="root_dir is empty"):
        RegistryConfig(root_dir=" ")
    with pytest.raises(pydantic.ValidationError, match="greater than 0"):
        RegistryConfig(lock_timeout_s=0)
    with pytest.raises(pydantic.ValidationError, match="finite number"):
        RegistryConfig(lock_timeout_s=float("inf"))
    with pytest.raises(pydantic.ValidationError, match="frozen"):
        config.version_tag = "v2"


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("/etc/passwd", r"'/etc/passwd' is an absolute path"),
        ("C:/models.json", r"'C:/models.json' is an absolute path"),
        ("../models.json", r"has an empty, '.' or '..' segment"),
        ("plots/../../x.png", r"has an empty, '.' or '..' segment"),
        ("plots//x.png", r"has an empty, '.' or '..' segment"),
        ("./models.json", r"has an empty, '.' or '..' segment"),
        ("plots\\x.png", r"contains '\\' or a control character"),
        ("plots/a\nb.png", r"contains '\\' or a control character"),
        ("", r"is empty"),
        ("meta.yaml", r"'meta.yaml' is reserved"),
        ("manifest", r"'manifest' is reserved: the registry writes the manifest"),
        ("manifest.sha256", r"'manifest.sha256' is reserved"),
    ],
)
def test_unsafe_artifact_names_are_refused(
    registry: ModelRegistry, name: str, message: str
) -> None:
    with pytest.raises(InvalidArtifactError, match=message):
        registry.publish({name: b"x"}, meta={}, run_id="r")
    assert not registry.root_dir.exists()


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({}, r"files must be a non-empty mapping"),
        ({"plots": b"x", "plots/a.png": b"y"}, r"'plots' is a file but 'plots/a.png' needs it"),
        ({"models.json": "{}"}, r"type str \(a str is ambiguous"),
        ({"models.json": Path("does/not/exist.json")}, r"source file .*exist.json .*does not"),
    ],
)
def test_bad_artifact_sources_are_refused(
    registry: ModelRegistry, files: dict, message: str
) -> None:
    with pytest.raises(InvalidArtifactError, match=message):
        registry.publish(files, meta={}, run_id="r")
    assert not registry.root_dir.exists()


@pytest.mark.parametrize(
    ("meta", "message"),
    [
        ({"version": "v7"}, r"meta keys \['version'\] are reserved"),
        ({"data": {"window": [1, {"start": object()}]}}, r"meta.data.window\[1\].start has type"),
        ({"rows": 3j}, r"meta.rows has type complex"),
        ([("a", 1)], r"meta must be a mapping"),
        (
            {"database": {"url": "postgresql://bob:s3cret@db:5432/plant"}},
            r"meta\.database\.url looks like a password or a URL with credentials",
        ),
        (
            {"config": {"db": {"options": ["sslmode=require", "mysql://u:s3cret@h/x"]}}},
            r"meta\.config\.db\.options\[1\] looks like",
        ),
        ({"config": {"db": {"PASSWORD": "s3cret"}}}, r"meta\.config\.db\.PASSWORD looks like"),
    ],
)
def test_bad_meta_is_refused_with_its_key_path(
    registry: ModelRegistry, meta: object, message: str
) -> None:
    with pytest.raises(MetadataError, match=message) as caught:
        registry.publish(artifacts(), meta=meta, run_id="r")
    assert "s3cret" not in str(caught.value)
    assert not registry.root_dir.exists()


def test_masked_credentials_are_accepted(registry: ModelRegistry) -> None:
    meta = {
        "database": {"url": "postgresql://bob:***@db/plant", "password": "**********"},
        "config": {"db": {"password_env": None, "url_env": "DB_URL"}},
    }
    registry.publish(artifacts(), meta=meta, run_id="r")
    assert registry.load().meta["database"] == meta["database"]


def test_lock_timeout_must_be_positive(tmp_path: Path) -> None:
    for bad in (0, -1, float("nan"), float("inf"), True):
        with pytest.raises(ValueError, match="lock_timeout must be a positive, finite number"):
            ModelRegistry(tmp_path, lock_timeout=bad)


# ---------------------------------------------------------------------- concurrency and crashes


def start_worker(root: Path, run_id: str, *extra: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.Popen(
        [sys.executable, str(WORKER), str(root), run_id, *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def wait_for_files(paths: list[Path], processes: list[subprocess.Popen[str]]) -> None:
    deadline = time.monotonic() + 60
    while not all(path.exists() for path in paths):
        for process in processes:
            if process.poll() is not None:
                pytest.fail(f"worker exited early: {process.communicate()}")
        if time.monotonic() > deadline:
            pytest.fail(f"workers never reached staging: {paths}")
        time.sleep(0.02)


@pytest.mark.parametrize("workers", [2, 4])
def test_concurrent_publishers_get_distinct_complete_versions(
    registry: ModelRegistry, tmp_path: Path, workers: int
) -> None:
    go = tmp_path / "go"
    ready = [tmp_path / f"ready-{i}" for i in range(workers)]
    processes = [
        start_worker(registry.root_dir, f"run-{i}", "--ready", str(ready[i]), "--wait-for", str(go))
        for i in range(workers)
    ]
    wait_for_files(ready, processes)  # every worker has its artifacts in staging at once
    go.touch()
    results = []
    for process in processes:
        stdout, stderr = process.communicate(timeout=60)
        assert process.returncode == 0, stderr
        results.append(json.loads(stdout))

    versions = sorted((r["version"] for r in results), key=lambda v: int(v[1:]))
    assert versions == [f"v{n}" for n in range(1, workers + 1)]
    loaded = [registry.load(v) for v in versions]  # verifies every checksum
    assert sorted(v.meta["run_id"] for v in loaded) == [f"run-{i}" for i in range(workers)]
    for version in loaded:
        assert version.read_json("models.json") == {"run_id": version.meta["run_id"]}
        assert len(version.read_bytes("models.pkl")) == 1 << 20
    newest = max(loaded, key=lambda v: v.meta["created_at"])
    assert os.readlink(registry.root_dir / "latest") == newest.version
    assert staging_entries(registry.root_dir) == []


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX SIGKILL")
def test_writer_killed_in_staging_leaves_no_version_and_is_cleaned_up(
    registry: ModelRegistry, tmp_path: Path
) -> None:
    publish(registry, 1)
    before = snapshot(registry.root_dir / "v1")
    ready = tmp_path / "ready"
    worker = start_worker(
        registry.root_dir,
        "doomed",
        "--ready",
        str(ready),
        "--stall",
        "120",
        "--payload-bytes",
        str(8 << 20),
    )
    wait_for_files([ready], [worker])
    staging = Path(ready.read_text())
    assert (staging / "version" / "models.pkl").stat().st_size == 8 << 20

    worker.send_signal(signal.SIGKILL)
    worker.communicate(timeout=30)
    assert worker.returncode == -signal.SIGKILL

    # Nothing of the killed run is visible: no new version, latest untouched and complete.
    assert [s.version for s in registry.list_versions()] == ["v1"]
    assert os.readlink(registry.root_dir / "latest") == "v1"
    assert registry.load().version == "v1"
    assert snapshot(registry.root_dir / "v1") == before
    assert staging_entries(registry.root_dir) == [staging.name]
    with pytest.raises(
        VersionNotFoundError,
        match=r"^model version 'v2' not found in the registry at .*\. Available versions: v1\. ",
    ):
        registry.resolve("v2")

    assert publish(registry, 2).version == "v2"
    assert staging_entries(registry.root_dir) == []
    assert os.readlink(registry.root_dir / "latest") == "v2"


def test_staging_of_a_live_writer_is_kept(registry: ModelRegistry, caplog) -> None:
    live = registry.root_dir / ".staging" / "live-run-abc"
    dead = registry.root_dir / ".staging" / "dead-run-def"
    for folder in (live, dead):
        (folder / "version").mkdir(parents=True)
        (folder / "version" / "models.json").write_bytes(b"partial")
    writer = FileLock(live / ".writer.lock")
    with writer.acquire(timeout=1):
        publish(registry, 1)
        assert staging_entries(registry.root_dir) == ["live-run-abc"]
    assert "Removed abandoned staging folder" in caplog.text
    assert "dead-run-def" in caplog.text


def test_leftovers_of_an_interrupted_latest_update_are_removed(registry: ModelRegistry) -> None:
    publish(registry, 1)
    leftover = registry.root_dir / f".latest.tmp-{'0' * 32}"
    os.symlink("v1", leftover)
    publish(registry, 2)
    assert not os.path.lexists(leftover)


HOLD_LOCK = """
import sys, time
from pathlib import Path
from filelock import FileLock
lock, held, release = sys.argv[1:]
with FileLock(lock):
    Path(held).touch()
    while not Path(release).exists():
        time.sleep(0.01)
"""


def test_a_lock_held_by_another_process_is_waited_for_then_named(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path / "registry", lock_timeout=0.5)
    publish(registry, 1)
    held, release = tmp_path / "held", tmp_path / "release"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(registry.root_dir / ".lock"), str(held), str(release)]
    )
    try:
        wait_for_files([held], [holder])
        started = time.monotonic()
        busy = r"could not take the registry lock .*\.lock within 0\.5 s: another process"
        with pytest.raises(RegistryLockError, match=busy):
            publish(registry, 2)
        waited = time.monotonic() - started
    finally:
        release.touch()
        holder.communicate(timeout=60)
    # The configured wait, not less (a lower bound only: a loaded machine just waits longer).
    assert waited >= 0.5
    assert [s.version for s in registry.list_versions()] == ["v1"]
    assert staging_entries(registry.root_dir) == []
    assert publish(registry, 3).version == "v2"  # the lock was released with its holder


# ---------------------------------------------------------------------- latest without symlinks


def test_latest_falls_back_to_a_copy_and_a_latest_file(
    registry: ModelRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_symlinks(*args: object, **kwargs: object) -> None:
        raise OSError("symbolic links are not supported here")

    latest = registry.root_dir / "latest"
    with monkeypatch.context() as patch:
        patch.setattr(os, "symlink", no_symlinks)
        for n in (1, 2):
            published = publish(registry, n)
            assert not latest.is_symlink()
            assert snapshot(latest) == snapshot(published.path)
            assert (registry.root_dir / "LATEST").read_text() == f"{published.version}\n"
            assert registry.resolve() == published.path
            assert registry.load().version == published.version
        assert [s.is_latest for s in registry.list_versions()] == [False, True]

    publish(registry, 3)  # links work again: back to a symlink, stale LATEST removed
    assert os.readlink(latest) == "v3"
    assert not (registry.root_dir / "LATEST").exists()
    assert sorted(p.name for p in registry.root_dir.iterdir() if p.name.startswith(".")) == [
        ".lock",
        ".staging",
    ]


# ---------------------------------------------------------------------- load and verification


def test_load_round_trip(registry: ModelRegistry, tmp_path: Path) -> None:
    plot = tmp_path / "fit.png"
    plot.write_bytes(b"png-bytes")
    publish(registry, 1)
    registry.publish({**artifacts(2), "plots/axis1_fit.png": plot}, meta=META, run_id="run-2")

    loaded = registry.load()
    assert loaded.version == "v2"
    assert loaded.verified
    assert loaded.path == registry.root_dir / "v2"
    assert loaded.meta["data"] == META["data"]
    assert loaded.read_json("thresholds.json") == THRESHOLDS
    assert loaded.read_bytes("plots/axis1_fit.png") == b"png-bytes"
    assert loaded.path_of("models.json") == registry.root_dir / "v2" / "models.json"
    assert set(loaded.artifacts) == {*artifacts(), "plots/axis1_fit.png"}
    assert registry.load("v1").read_bytes("metrics.csv") == artifacts(1)["metrics.csv"]

    with pytest.raises(ArtifactNotFoundError, match=r"'models.pkl' is not part of .* v2 .*: "):
        loaded.path_of("models.pkl")
    with pytest.raises(InvalidArtifactError, match=r"has an empty, '\.' or '\.\.' segment"):
        loaded.read_bytes("../v1/models.json")


def test_checksum_error_names_every_modified_and_missing_file(registry: ModelRegistry) -> None:
    published = publish(registry, 1)
    (published.path / "models.json").write_bytes(b'{"tampered": true}')
    (published.path / "thresholds.json").unlink()

    message = (
        r"v1 at .*v1 failed verification against its manifest "
        r"\(modified: models\.json; missing: thresholds\.json\)\. Do not use it: restore the "
        r"version folder from a backup, use another version, or re-train with `python main\.py`"
    )
    with pytest.raises(ChecksumError, match=message):
        registry.load()
    unverified = registry.load("v1", verify=False)
    assert unverified.read_bytes("models.json") == b'{"tampered": true}'
    assert unverified.read_bytes("metrics.csv") == artifacts(1)["metrics.csv"]


def test_reads_after_load_are_verified_too(registry: ModelRegistry) -> None:
    published = publish(registry, 1)
    loaded = registry.load()
    (published.path / "metrics.csv").write_bytes(b"axis,r2\naxis1,0.99\n")
    (published.path / "models.json").unlink()

    with pytest.raises(ChecksumError, match=r"\(modified: metrics.csv\)"):
        loaded.read_bytes("metrics.csv")
    with pytest.raises(ChecksumError, match=r"\(missing: models.json\)"):
        loaded.read_json("models.json")


def test_unreadable_meta_is_refused_on_load_and_tolerated_in_list(
    registry: ModelRegistry,
) -> None:
    publish(registry, 1)
    publish(registry, 2)
    (registry.root_dir / "v1" / "meta.yaml").write_text("artifacts: [unclosed", encoding="utf-8")

    with pytest.raises(ChecksumError, match=r"v1 failed verification .*\(modified: meta\.yaml\)"):
        registry.load("v1")
    with pytest.raises(MetadataError, match=r"v1/meta\.yaml cannot be read as YAML"):
        registry.load("v1", verify=False)
    summaries = registry.list_versions()
    assert [(s.version, s.run_id, s.rows) for s in summaries] == [
        ("v1", None, None),
        ("v2", "run-2", 1200),
    ]


# ---------------------------------------------------------------------- listing and not-found


def test_list_versions_reports_meta_fields_in_numeric_order(registry: ModelRegistry) -> None:
    assert registry.list_versions() == []
    publish(registry, 1, version_tag="v10")
    publish(registry, 2, version_tag="v2", meta={"note": "no data block"})
    publish(registry, 3, version_tag="beta")
    publish(registry, 4, version_tag="alpha")
    (registry.root_dir / "notes").mkdir()  # not a version: no meta.yaml

    summaries = registry.list_versions()
    assert [s.version for s in summaries] == ["v2", "v10", "beta", "alpha"]
    by_version = {s.version: s for s in summaries}
    v10 = by_version["v10"]
    assert (v10.run_id, v10.rows, v10.axes) == ("run-1", 1200, ("axis1", "axis2"))
    assert (v10.window_start, v10.window_end) == (META["data"]["start"], META["data"]["end"])
    assert not v10.is_latest
    v2 = by_version["v2"]
    assert (v2.rows, v2.window_start, v2.window_end, v2.axes) == (None, None, None, ())
    assert [s.is_latest for s in summaries] == [False, False, False, True]
    assert all(s.created_at is not None and s.created_at.tzinfo for s in summaries)
    assert by_version["beta"].created_at < by_version["alpha"].created_at


def test_missing_and_empty_registry_say_where_and_how_to_train(tmp_path: Path) -> None:
    missing = ModelRegistry(tmp_path / "nowhere")
    with pytest.raises(
        VersionNotFoundError, match=r"registry at .*nowhere does not exist\. .*`python main\.py`"
    ):
        missing.load()
    (tmp_path / "empty").mkdir()
    empty = ModelRegistry(tmp_path / "empty")
    with pytest.raises(
        VersionNotFoundError, match=r"registry at .*empty holds no versions\. .*`python main\.py`"
    ):
        empty.resolve("v1")
    assert empty.list_versions() == []
    assert isinstance(VersionNotFoundError("x"), LookupError)


def test_unknown_version_lists_the_available_ones(registry: ModelRegistry) -> None:
    for n in range(1, 4):
        publish(registry, n)
    message = (
        r"model version 'v9' not found in the registry at .*registry\. "
        r"Available versions: v1, v2, v3\. .*`python main\.py`"
    )
    with pytest.raises(VersionNotFoundError, match=message):
        registry.load("v9")

    (registry.root_dir / "latest").unlink()
    with pytest.raises(
        VersionNotFoundError, match=r"has no `latest` pointer\. Available versions: v1, v2, v3"
    ):
        registry.load()
    os.symlink("../elsewhere", registry.root_dir / "latest")
    with pytest.raises(
        VersionNotFoundError, match=r"pointer naming '\.\./elsewhere', which is not a version"
    ):
        registry.resolve()


# ---------------------------------------------------------------------- tampering (manifest)


def _edit_data_end(version: Path) -> None:
    meta = version / "meta.yaml"
    text = meta.read_text(encoding="utf-8")
    assert "2024-01-02T00:00:00+00:00" in text
    meta.write_text(text.replace("2024-01-02T00:00:00", "2024-03-01T00:00:00"), encoding="utf-8")


def _rewrite_manifest(version: Path, edit: Any) -> None:
    """A hand edit of the manifest that also recomputes manifest.sha256 (so only its lines
    can be wrong)."""
    manifest = version / "manifest"
    manifest.write_bytes(edit(manifest.read_bytes()))
    (version / "manifest.sha256").write_text(f"{sha256(manifest.read_bytes())}  manifest\n")


def _edit_data_end_and_its_manifest_line(version: Path) -> None:
    old = sha256((version / "meta.yaml").read_bytes())
    _edit_data_end(version)
    new = sha256((version / "meta.yaml").read_bytes())
    manifest = version / "manifest"
    manifest.write_bytes(manifest.read_bytes().replace(old.encode(), new.encode()))


TAMPERING = {
    "data.end edited in meta.yaml": (_edit_data_end, r"\(modified: meta\.yaml\)"),
    "meta.yaml deleted": (lambda v: (v / "meta.yaml").unlink(), r"\(missing: meta\.yaml\)"),
    "meta.yaml not YAML": (
        lambda v: (v / "meta.yaml").write_text("data: [unclosed"),
        r"\(modified: meta\.yaml\)",
    ),
    "models.json replaced by a folder": (
        lambda v: ((v / "models.json").unlink(), (v / "models.json").mkdir()),
        r"\(missing: models\.json\)",
    ),
    "meta.yaml and its manifest line edited": (
        _edit_data_end_and_its_manifest_line,
        r"\(modified: manifest\)",
    ),
    "manifest deleted": (lambda v: (v / "manifest").unlink(), r"\(missing: manifest\)"),
    "manifest.sha256 deleted": (
        lambda v: (v / "manifest.sha256").unlink(),
        r"\(missing: manifest\.sha256\)",
    ),
    "manifest.sha256 garbled": (
        lambda v: (v / "manifest.sha256").write_text("0" * 63 + "  manifest\n"),
        r"\(modified: manifest\.sha256\)",
    ),
    "manifest line malformed": (
        lambda v: _rewrite_manifest(v, lambda b: b.replace(b"  metrics.csv", b" metrics.csv")),
        r"\(manifest line 2 is not '<sha256>  <file name>' with a safe file name listed once\)",
    ),
    "manifest line escaping the folder": (
        lambda v: _rewrite_manifest(v, lambda b: b.replace(b"  metrics.csv", b"  ../v2/x")),
        r"\(manifest line 2 is not",
    ),
    "meta.yaml dropped from the manifest": (
        lambda v: _rewrite_manifest(
            v, lambda b: b"".join(x for x in b.splitlines(True) if b"meta.yaml" not in x)
        ),
        r"\(manifest does not list meta\.yaml\)",
    ),
}


@pytest.mark.parametrize("case", list(TAMPERING))
def test_a_tampered_version_is_refused_naming_the_file_and_the_fix(
    registry: ModelRegistry, case: str
) -> None:
    version = publish(registry, 1).path
    publish(registry, 2)
    tamper, problem = TAMPERING[case]
    tamper(version)

    message = (
        rf"model version v1 at .*v1 failed verification against its manifest {problem}.*"
        r"Do not use it: restore the version folder from a backup, use another version, or "
        r"re-train with `python main\.py`\."
    )
    with pytest.raises(ChecksumError, match=message):
        registry.load("v1")
    assert registry.load("v2").meta["data"] == META["data"]  # the others are unaffected
    assert [s.version for s in registry.list_versions()] == ["v1", "v2"]


def test_a_version_without_a_manifest_is_refused_with_re_train(registry: ModelRegistry) -> None:
    """Versions published before manifests existed carry none: meta.yaml was never covered."""
    version = publish(registry, 1).path
    (version / "manifest").unlink()
    (version / "manifest.sha256").unlink()

    message = (
        r"model version v1 at .*v1 has no manifest file: it was published before versions "
        r"carried one \(or its manifest was deleted\), so its files, meta\.yaml included, "
        r"cannot be verified\. Do not use it: re-train with `python main\.py`"
    )
    with pytest.raises(ChecksumError, match=message):
        registry.load()
    with pytest.raises(ChecksumError, match=message):
        registry.load(verify=False)  # the manifest is also what lists the artifacts
    assert [s.version for s in registry.list_versions()] == ["v1"]


def test_files_the_manifest_does_not_list_are_ignored_and_named(
    registry: ModelRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    version = publish(registry, 1).path
    (version / "notes.txt").write_text("looked fine on Monday")
    (version / "plots" / "extra.png").write_bytes(b"png")

    loaded = registry.load()
    assert loaded.read_bytes("metrics.csv") == artifacts(1)["metrics.csv"]
    assert "holds files its manifest does not list; they are ignored: notes.txt, " in caplog.text
    assert "plots/extra.png" in caplog.text
    with pytest.raises(ArtifactNotFoundError, match=r"'notes.txt' is not part of model version"):
        loaded.read_bytes("notes.txt")


def test_an_unverified_load_still_reads_a_tampered_version(registry: ModelRegistry) -> None:
    version = publish(registry, 1).path
    _edit_data_end(version)
    loaded = registry.load(verify=False)
    assert loaded.meta["data"]["end"] == "2024-03-01T00:00:00+00:00"
    assert not loaded.verified


# ---------------------------------------------------------------------- file-system errors


def test_a_registry_root_that_is_a_file_is_a_storage_error(tmp_path: Path) -> None:
    root = tmp_path / "registry"
    root.write_text("not a folder")
    registry = ModelRegistry(root)
    message = r"registry\.root_dir .*registry is a file, not a folder; move the file away"

    for attempt in (lambda: publish(registry), registry.list_versions, registry.load):
        with pytest.raises(RegistryStorageError, match=message) as caught:
            attempt()
        assert caught.value.errno == errno.ENOTDIR
    assert root.read_text() == "not a folder"


def test_a_registry_root_below_a_file_is_a_storage_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    registry = ModelRegistry(tmp_path / "file" / "registry")
    message = (
        r"cannot publish a version to the model registry at .*file/registry: Not a directory "
        r"\(.*file/registry/\.staging\)\. Free space on that disk or make the folder writable, "
        r"or set registry\.root_dir to a writable folder on a local disk; nothing was published"
    )
    with pytest.raises(RegistryStorageError, match=message) as caught:
        publish(registry)
    assert isinstance(caught.value, OSError)
    assert (tmp_path / "file").read_text() == "x"


def test_an_immutable_registry_refuses_a_publish_and_still_loads(registry: ModelRegistry) -> None:
    publish(registry, 1)
    with immutable(registry.root_dir):
        with pytest.raises(
            RegistryStorageError,
            match=r"cannot publish a version .*: Operation not permitted .*nothing was published",
        ):
            publish(registry, 2)
        assert registry.load().version == "v1"  # reading needs no write access
        assert staging_entries(registry.root_dir) == []
    assert [s.version for s in registry.list_versions()] == ["v1"]
    assert os.readlink(registry.root_dir / "latest") == "v1"


def test_a_full_disk_refuses_a_publish(tmp_path: Path) -> None:
    with full_disk(tmp_path) as disk:
        registry = ModelRegistry(disk / "registry")
        with pytest.raises(
            RegistryStorageError,
            match=r"registry: No space left on device\. .*nothing was published",
        ) as caught:
            publish(registry)
        assert caught.value.errno == errno.ENOSPC
        assert registry.list_versions() == []
        assert staging_entries(registry.root_dir) == []


def test_a_disk_filling_up_at_the_commit_leaves_the_registry_as_it_was(
    registry: ModelRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The disk fills between the artifacts and meta.yaml (simulated at the flush that makes
    meta.yaml durable — its fsync, or the file system's syncfs — where the OS reports delayed
    allocation failures): nothing of the version remains."""
    publish(registry, 1)
    before = snapshot(registry.root_dir / "v1")
    real_fsync = os.fsync
    real_sync = registry_module.sync_filesystem

    def fsync_on_a_full_disk(descriptor: int) -> None:
        if Path(os.readlink(f"/proc/self/fd/{descriptor}")).name == "meta.yaml":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_fsync(descriptor)

    def sync_on_a_full_disk(path: Path) -> bool:
        if (path / "meta.yaml").exists():
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_sync(path)

    with monkeypatch.context() as patch:
        patch.setattr(os, "fsync", fsync_on_a_full_disk)
        patch.setattr(registry_module, "sync_filesystem", sync_on_a_full_disk)
        with pytest.raises(
            RegistryStorageError,
            match=r"cannot publish a version to the model registry at .*registry: No space left "
            r"on device\. Free space on that disk .*`latest` is unchanged\.",
        ) as caught:
            publish(registry, 2)
    assert caught.value.errno == errno.ENOSPC
    assert [s.version for s in registry.list_versions()] == ["v1"]
    assert os.readlink(registry.root_dir / "latest") == "v1"
    assert snapshot(registry.root_dir / "v1") == before
    assert staging_entries(registry.root_dir) == []
    assert publish(registry, 3).version == "v2"
