"""What the registry says: the versions it lists when one is missing, a meta key it cannot
store, and its repr."""

from __future__ import annotations

import logging
import re
from datetime import datetime, timezone
from pathlib import Path

import pytest

from ModelRegistry import MetadataError, ModelRegistry, VersionNotFoundError

META = {"data": {"rows": 3}}


def _publish(registry: ModelRegistry, count: int) -> None:
    for n in range(count):
        registry.publish({"models.json": b"{}"}, meta=META, run_id=f"run-{n}")


@pytest.mark.parametrize(
    ("count", "listed"),
    [
        (10, "v1, v2, v3, v4, v5, v6, v7, v8, v9, v10"),
        (12, "... (2 older), v3, v4, v5, v6, v7, v8, v9, v10, v11, v12"),
    ],
)
def test_a_missing_version_lists_the_ten_newest_and_counts_the_rest(
    tmp_path: Path, count: int, listed: str
) -> None:
    registry = ModelRegistry(tmp_path / "registry")
    _publish(registry, count)
    with pytest.raises(VersionNotFoundError) as caught:
        registry.resolve("v99")
    assert str(caught.value) == (
        f"model version 'v99' not found in the registry at {registry.root_dir}. Available "
        f"versions: {listed}. Use one of those, or train and publish one with `python main.py`."
    )


def test_a_meta_key_yaml_cannot_store_is_named(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path / "registry")
    with pytest.raises(
        MetadataError,
        match=re.escape("key 1j of meta.data has type complex (1j), which meta.yaml cannot store"),
    ):
        registry.publish({"models.json": b"{}"}, meta={"data": {1j: 1}}, run_id="r")
    assert not registry.root_dir.exists()


def test_the_repr_names_the_root(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path / "registry")
    assert repr(registry) == f"ModelRegistry(root_dir={str(tmp_path / 'registry')!r})"


def test_a_window_stored_as_yaml_timestamps_is_listed_in_iso_8601(tmp_path: Path) -> None:
    # safe_dump writes datetimes as YAML timestamps, which safe_load reads back as datetimes.
    start, end = (datetime(2024, 1, d, tzinfo=timezone.utc) for d in (1, 2))
    registry = ModelRegistry(tmp_path / "registry")
    registry.publish(
        {"models.json": b"{}"}, meta={"data": {"start": start, "end": end}}, run_id="r"
    )
    (summary,) = registry.list_versions()
    assert (summary.window_start, summary.window_end) == (
        "2024-01-01T00:00:00+00:00",
        "2024-01-02T00:00:00+00:00",
    )


def test_listing_a_version_with_a_broken_meta_warns_naming_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    registry = ModelRegistry(tmp_path / "registry")
    _publish(registry, 1)
    meta = registry.root_dir / "v1" / "meta.yaml"
    meta.write_text("data: [unclosed", encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="ModelRegistry.registry"):
        (summary,) = registry.list_versions()
    assert (summary.version, summary.rows) == ("v1", None)
    assert len(caplog.messages) == 1
    assert caplog.messages[0].startswith(f"Listing v1 without details: {meta} cannot be read")
