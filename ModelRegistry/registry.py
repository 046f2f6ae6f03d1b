"""Versioned, file-based model registry with crash-safe publishing and an atomic ``latest``.

Layout under ``root_dir``::

    .lock                      inter-process lock, held only while choosing and committing a version
    .staging/<run>-<random>/   one folder per publish in progress
        .writer.lock           held by the publishing process for as long as it runs
        version/               the version being written, renamed to <root>/<tag> when complete
    v1/  v2/  ...  <tag>/      published versions, never modified afterwards
        meta.yaml  models.json  models.pkl  prep_stats.json  thresholds.json  metrics.csv  plots/
        manifest  manifest.sha256   sha256 of every file above, and of the manifest itself
    latest -> v2               relative symlink to the newest complete version
    LATEST                     only where symlinks are unavailable: the newest version's name,
                               and ``latest`` is then a full copy of that version

How the guarantees are achieved:

* A version appears all at once: it is written and fsynced in its staging folder, then moved into
  place with one ``os.rename`` on the same filesystem. A crash at any earlier point leaves only a
  staging folder, which is not a version.
* ``latest`` moves atomically: a temporary relative symlink is created and ``os.replace``-d onto
  ``latest``, after the version it names is complete, so it never dangles.
* Version numbers and the pointer are chosen under ``.lock`` (``filelock``, released by the OS if
  its holder dies), so concurrent publishers get distinct versions; the slow part, writing the
  artifacts, runs outside the lock.
* A later publish removes staging folders whose writer lock it can take without waiting: their
  writer is gone.
* Every file of a version, ``meta.yaml`` included, is listed with its sha256 in ``manifest``,
  whose own hash is in ``manifest.sha256`` (see :mod:`ModelRegistry.manifest`); loading verifies
  all of them before anything is parsed.
* Failures of the disk (full, read-only, a file where a folder is expected) become
  :class:`RegistryStorageError` naming the path; a failed publish leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import re
import shutil
import tempfile
import uuid
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from ._fs import (
    can_sync_filesystem,
    copy_synced,
    fsync_dir,
    replace_text_synced,
    sync_filesystem,
    write_bytes_synced,
)
from ._meta import check_meta, dump_meta
from .aliases import (
    Aliases,
    read_alias,
    read_aliases,
    read_decision,
    remove_records,
    write_alias,
    write_decision,
    write_pin,
)
from .errors import (
    AliasError,
    InvalidArtifactError,
    InvalidTagError,
    MetadataError,
    RegistryError,
    RegistryLockError,
    RegistryStorageError,
    VersionExistsError,
    VersionNotFoundError,
)
from .manifest import render_manifest, render_manifest_hash
from .naming import (
    AUTO_TAG,
    CHAMPION,
    LATEST_FILE,
    LATEST_NAME,
    MANIFEST_FILE,
    MANIFEST_HASH_FILE,
    META_FILE,
    PREVIOUS,
    validate_artifact_name,
    validate_version_tag,
    version_number,
)
from .versions import (
    TRAIN_HINT,
    LoadedVersion,
    PublishedVersion,
    VersionSummary,
    open_version,
    read_meta,
    summarize,
    summary_order,
    verify_version,
)

logger = logging.getLogger(__name__)

__all__ = ["DEFAULT_LOCK_TIMEOUT_S", "ModelRegistry", "RemovedVersion"]

DEFAULT_LOCK_TIMEOUT_S = 60.0
"""Seconds a publish waits for the registry lock (``registry.lock_timeout_s``)."""

LOCK_FILE = ".lock"
STAGING_DIR = ".staging"
WRITER_LOCK = ".writer.lock"
PAYLOAD_DIR = "version"

_POINTER_LEFTOVER = re.compile(r"\.(?:latest|LATEST)\.(?:tmp|old)-[0-9a-f]{32}")
_MAX_LISTED = 10
_WRITE_FIX = (
    "Free space on that disk or make the folder writable, or set registry.root_dir to a writable "
    "folder on a local disk; nothing was published and `latest` is unchanged."
)
_READ_FIX = (
    "Check the folder's permissions and its disk, or set registry.root_dir to the folder that "
    "holds your versions."
)


class ModelRegistry:
    """A folder of immutable, checksummed model versions and an atomic ``latest`` pointer.

    Parameters
    ----------
    root_dir:
        Registry folder; created by the first :meth:`publish`. Made absolute against the current
        working directory at construction.
    lock_timeout:
        Seconds to wait for the inter-process registry lock before raising
        :class:`RegistryLockError`. Default :data:`DEFAULT_LOCK_TIMEOUT_S` (60).

    Raises
    ------
    ValueError
        If ``lock_timeout`` is not a positive, finite number.
    """

    def __init__(
        self,
        root_dir: str | os.PathLike[str],
        *,
        lock_timeout: float = DEFAULT_LOCK_TIMEOUT_S,
    ) -> None:
        if (
            isinstance(lock_timeout, bool)
            or not isinstance(lock_timeout, (int, float))
            or not 0 < lock_timeout < float("inf")
        ):
            raise ValueError(
                f"lock_timeout must be a positive, finite number of seconds, got {lock_timeout!r}; "
                f"use e.g. 60."
            )
        self.root_dir = Path(root_dir).absolute()
        self.lock_timeout = float(lock_timeout)

    def __repr__(self) -> str:
        return f"ModelRegistry(root_dir={str(self.root_dir)!r})"

    # ------------------------------------------------------------------ publishing

    def publish(
        self,
        files: Mapping[str, bytes | os.PathLike[str]],
        *,
        meta: Mapping[str, Any],
        version_tag: str = AUTO_TAG,
        run_id: str,
        _before_commit: Callable[[Path], None] | None = None,
    ) -> PublishedVersion:
        """Publish ``files`` and ``meta`` as a new, complete version and point ``latest`` at it.

        All inputs are checked before anything is written. The artifacts are written and hashed
        in a staging folder; then, under the registry lock, the version is named, ``meta.yaml``
        and the manifest are added, the folder is renamed into place and ``latest`` is
        re-pointed.

        Parameters
        ----------
        files:
            Artifact name (relative POSIX path such as ``"models.json"`` or
            ``"plots/axis1_fit.png"``) → ``bytes`` to write, or a path-like of a file to copy.
            Must not be empty.
        meta:
            Caller metadata written to ``meta.yaml`` as given (YAML ``safe_dump``, key order
            kept), preceded by ``version``, ``run_id`` and ``created_at``; those three keys are
            reserved.
        version_tag:
            ``"auto"`` (default) for the next ``v<N>``, or an explicit tag that must not exist.
        run_id:
            Identifier of the producing run, recorded in ``meta.yaml``.
        _before_commit:
            Test hook, not public API: called with the staging folder once the artifacts are
            written and before the registry lock is taken.

        Returns
        -------
        PublishedVersion

        Raises
        ------
        InvalidTagError
            Bad ``version_tag``.
        InvalidArtifactError
            Empty ``files``, an unsafe name, a name that is both a file and a folder, or a
            source that is not a readable regular file.
        MetadataError
            Reserved keys in ``meta``, a value YAML cannot store, something that looks like a
            secret (a ``*password*`` key with a value, or a URL with an unmasked password), or
            an empty ``run_id``.
        VersionExistsError
            The explicit tag is already published; the existing version is left untouched.
        RegistryLockError
            The registry lock was not acquired within ``lock_timeout``.
        RegistryStorageError
            The registry folder cannot be written (full disk, read-only, a file where a folder
            is expected); nothing is published and ``latest`` is unchanged.
        """
        tag = validate_version_tag(version_tag, allow_auto=True)
        run_id = _check_run_id(run_id)
        sources = _check_files(files)
        caller_meta = check_meta(meta)
        if tag != AUTO_TAG and os.path.lexists(self.root_dir / tag):
            raise self._exists_error(tag)  # fail before writing; re-checked under the lock
        with self._storage_errors("publish a version to", _WRITE_FIX):
            self._check_root()
            staging_root = self.root_dir / STAGING_DIR
            staging_root.mkdir(parents=True, exist_ok=True)
            staging, writer_lock = self._open_staging(staging_root, run_id)
            try:
                payload = staging / PAYLOAD_DIR
                payload.mkdir()
                checksums = _write_artifacts(payload, sources)
                if _before_commit is not None:
                    _before_commit(staging)
                with self._registry_lock():
                    published = self._commit(payload, tag, run_id, caller_meta, checksums)
            finally:
                _discard_staging(staging, writer_lock)
        logger.info(
            "Published model version %s at %s (run %s, %d artifacts); latest -> %s",
            published.version,
            published.path,
            run_id,
            len(checksums),
            published.version,
        )
        return published

    def _open_staging(self, staging_root: Path, run_id: str) -> tuple[Path, FileLock]:
        # Under the registry lock, so a cleaner never sees a staging folder whose writer lock is
        # not yet held.
        with self._registry_lock():
            self._remove_abandoned(staging_root)
            safe_run = re.sub(r"[^A-Za-z0-9._-]", "_", run_id)[:40]
            staging = Path(tempfile.mkdtemp(prefix=f"{safe_run}-", dir=staging_root))
            writer_lock = FileLock(staging / WRITER_LOCK)
            try:
                writer_lock.acquire(blocking=False)
            except Timeout as exc:
                shutil.rmtree(staging, ignore_errors=True)
                raise RegistryError(
                    f"could not lock the new staging folder {staging}; the filesystem under "
                    f"{self.root_dir} may not support file locks. Put registry.root_dir on a "
                    f"local disk."
                ) from exc
        return staging, writer_lock

    def _remove_abandoned(self, staging_root: Path) -> None:
        for entry in sorted(staging_root.iterdir()):
            if not entry.is_dir() or entry.is_symlink():
                continue
            probe = FileLock(entry / WRITER_LOCK)
            try:
                probe.acquire(blocking=False)
            except Timeout:
                continue
            except OSError as exc:
                logger.debug("Skipping staging folder %s: %s", entry, exc)
                continue
            probe.release()
            shutil.rmtree(entry, ignore_errors=True)
            logger.warning(
                "Removed abandoned staging folder %s: the publish that wrote it stopped before "
                "committing (crash or kill), so it never became a version.",
                entry,
            )
        for entry in self.root_dir.iterdir():
            if _POINTER_LEFTOVER.fullmatch(entry.name):
                _remove_entry(entry)
                logger.warning("Removed leftover of an interrupted `latest` update: %s", entry)

    def _commit(
        self,
        payload: Path,
        tag: str,
        run_id: str,
        caller_meta: tuple[dict[str, Any], str],
        checksums: dict[str, str],
    ) -> PublishedVersion:
        version = self._next_version() if tag == AUTO_TAG else tag
        target = self.root_dir / version
        if os.path.lexists(target):
            raise self._exists_error(version)
        created_at = datetime.now(timezone.utc)
        header = {
            "version": version,
            "run_id": run_id,
            "created_at": created_at.isoformat(timespec="microseconds"),
        }
        # The caller's part was dumped once when it was checked: a block mapping's entries
        # are dumped one after the other, so the header's text followed by it is the text of
        # the whole document.
        text = dump_meta(header) + caller_meta[1]
        each = not can_sync_filesystem()  # else one flush of the file system below
        meta_hash = write_bytes_synced(payload / META_FILE, text.encode("utf-8"), sync=each)
        manifest = render_manifest({**checksums, META_FILE: meta_hash})
        write_bytes_synced(payload / MANIFEST_FILE, manifest, sync=each)
        write_bytes_synced(payload / MANIFEST_HASH_FILE, render_manifest_hash(manifest), sync=each)
        if not sync_filesystem(payload):
            fsync_dir(payload)
        try:
            os.rename(payload, target)
        except OSError as exc:
            if os.path.lexists(target):
                raise self._exists_error(version) from exc
            raise
        fsync_dir(self.root_dir)
        try:
            self._point_latest(version)
        except OSError as exc:
            raise RegistryError(
                f"model version {version} was published completely at {target}, but moving "
                f"`latest` to it failed ({exc}); `latest` still names the previous version. Fix "
                f"the cause and load {version} explicitly, or publish again."
            ) from exc
        return PublishedVersion(version=version, path=target, run_id=run_id, created_at=created_at)

    def _next_version(self) -> str:
        numbers = (version_number(name) for name in os.listdir(self.root_dir))
        return f"v{max((n for n in numbers if n is not None), default=0) + 1}"

    def _exists_error(self, version: str) -> VersionExistsError:
        return VersionExistsError(
            f"model version {version!r} already exists at {self.root_dir / version}; published "
            f"versions are never overwritten. Use another registry.version_tag, or 'auto' for "
            f"the next v<N>."
        )

    def _point_latest(self, version: str) -> None:
        link = self.root_dir / f".latest.tmp-{uuid.uuid4().hex}"
        try:
            os.symlink(version, link, target_is_directory=True)
        except (OSError, NotImplementedError) as exc:
            logger.info(
                "Symlinks are unavailable in %s (%s); `latest` becomes a copy of %s and the "
                "LATEST file names it.",
                self.root_dir,
                exc,
                version,
            )
            self._copy_latest(version)
            return
        self._swap_latest(link)
        # A LATEST file left by an earlier copy-mode publish would now be stale.
        with contextlib.suppress(FileNotFoundError):
            (self.root_dir / LATEST_FILE).unlink()
            fsync_dir(self.root_dir)

    def _copy_latest(self, version: str) -> None:
        source = self.root_dir / version
        copy = self.root_dir / f".latest.tmp-{uuid.uuid4().hex}"
        copy.mkdir()
        for item in sorted(source.rglob("*")):
            destination = copy / item.relative_to(source)
            if item.is_dir():
                destination.mkdir(parents=True, exist_ok=True)
            else:
                destination.parent.mkdir(parents=True, exist_ok=True)
                copy_synced(item, destination)
        fsync_dir(copy)
        # LATEST is the authoritative pointer in copy mode; it names a complete version folder
        # before the copy is swapped in, so `resolve()` never sees a gap.
        replace_text_synced(self.root_dir / LATEST_FILE, f"{version}\n")
        self._swap_latest(copy)

    def _swap_latest(self, staged: Path) -> None:
        latest = self.root_dir / LATEST_NAME
        if os.path.lexists(latest) and (_is_real_dir(latest) or _is_real_dir(staged)):
            # rename(2) cannot put a folder over a link or a non-empty folder: move the old
            # pointer aside first. Only reached in copy mode or when switching modes.
            aside = self.root_dir / f".latest.old-{uuid.uuid4().hex}"
            os.rename(latest, aside)
            os.rename(staged, latest)
            _remove_entry(aside)
        else:
            os.replace(staged, latest)
        fsync_dir(self.root_dir)

    @contextlib.contextmanager
    def _registry_lock(self) -> Iterator[None]:
        path = self.root_dir / LOCK_FILE
        lock = FileLock(path, timeout=self.lock_timeout)
        try:
            lock.acquire()
        except Timeout as exc:
            # The lock's own timeout, so the message states the wait that really happened.
            raise RegistryLockError(
                f"could not take the registry lock {path} within {lock.timeout:g} s: another "
                f"process is committing a version to {self.root_dir}. The lock is released "
                f"automatically when its holder exits; if no other run is active, look for a hung "
                f"`python main.py` process, or retry with a longer registry.lock_timeout_s."
            ) from exc
        try:
            yield
        finally:
            lock.release()

    @contextlib.contextmanager
    def _storage_errors(self, action: str, fix: str) -> Iterator[None]:
        """Turn an OS error in the registry folder into a :class:`RegistryStorageError`."""
        try:
            yield
        except RegistryError:
            raise
        except OSError as exc:
            where = f" ({exc.filename})" if exc.filename else ""
            error = RegistryStorageError(
                f"cannot {action} the model registry at {self.root_dir}: "
                f"{exc.strerror or exc}{where}. {fix}"
            )
            error.errno = exc.errno
            raise error from exc

    def _check_root(self) -> None:
        """Refuse a registry root that exists but is not a folder (a file in its place)."""
        if os.path.lexists(self.root_dir) and not self.root_dir.is_dir():
            error = RegistryStorageError(
                f"registry.root_dir {self.root_dir} is a file, not a folder; move the file away, "
                f"or set registry.root_dir to a folder."
            )
            error.errno = errno.ENOTDIR
            raise error

    # ------------------------------------------------------------------ reading

    def list_versions(self) -> list[VersionSummary]:
        """Return a summary of every published version, in version order.

        Numbered tags ``v<N>`` come first in numeric order (``v2`` before ``v10``), then other
        tags by ``created_at``, then name. A version whose ``meta.yaml`` cannot be read is still
        listed, with empty fields, and a warning is logged.

        Returns
        -------
        list[VersionSummary]
            Empty when the registry folder is missing or holds no versions.

        Raises
        ------
        RegistryStorageError
            If ``root_dir`` is a file, or the folder cannot be listed.
        """
        latest = self._latest_name()
        summaries = []
        with self._storage_errors("list", _READ_FIX):
            names = self._version_names()
        for name in names:
            try:
                meta = read_meta(self.root_dir / name)
            except MetadataError as exc:
                logger.warning("Listing %s without details: %s", name, exc)
                meta = {}
            summaries.append(summarize(name, meta, is_latest=name == latest))
        return sorted(summaries, key=summary_order)

    def resolve(self, version: str = LATEST_NAME) -> Path:
        """Return the absolute folder of ``version``, following ``latest`` to a concrete version.

        Parameters
        ----------
        version:
            A tag such as ``"v3"``, ``"latest"`` (default), ``"champion"`` (the alias; the
            newest version while none is set) or ``"previous"``.

        Returns
        -------
        pathlib.Path
            ``<root_dir>/<tag>``, never the ``latest`` link itself, so the result stays valid
            while later publishes move ``latest``.

        Raises
        ------
        InvalidTagError
            If ``version`` is not a valid tag.
        VersionNotFoundError
            If the registry is missing or empty, the version does not exist, or ``latest`` does
            not name a version; the message lists the available versions.
        RegistryStorageError
            If ``root_dir`` is a file, or the folder cannot be listed.
        """
        if version == CHAMPION:
            champion = read_alias(self.root_dir, CHAMPION, self._is_version_dir)
            return self.resolve(LATEST_NAME) if champion is None else self.root_dir / champion
        if version == PREVIOUS:
            previous = read_alias(self.root_dir, PREVIOUS, self._is_version_dir)
            if previous is None:
                raise AliasError(
                    f"the registry at {self.root_dir} has no `previous` version yet (it is set "
                    f"by a promotion); name a version instead."
                )
            return self.root_dir / previous
        if version == LATEST_NAME:
            name = self._latest_name()
            if name is None or not self._is_version_dir(name):
                raise self._not_found(version, latest_target=name)
            return self.root_dir / name
        validate_version_tag(version, allow_auto=False)
        if not self._is_version_dir(version):
            raise self._not_found(version)
        return self.root_dir / version

    def load(self, version: str = LATEST_NAME, *, verify: bool = True) -> LoadedVersion:
        """Resolve ``version``, verify its manifest and every file, then read ``meta.yaml``.

        Parameters
        ----------
        version:
            A tag or ``"latest"`` (default).
        verify:
            Check the manifest against ``manifest.sha256``, then recompute the sha256 of every
            file it lists (``meta.yaml`` included) and compare, before parsing anything.
            Default ``True``; then reads through the returned object are checked too. With
            ``False`` the manifest is still needed (it lists the artifacts).

        Returns
        -------
        LoadedVersion

        Raises
        ------
        InvalidTagError, VersionNotFoundError
            As :meth:`resolve`.
        ChecksumError
            If the version has no manifest (published before manifests existed: re-train), or
            the manifest or any file it lists is modified or missing; the message names every
            one of them.
        MetadataError
            If ``meta.yaml`` cannot be parsed (only possible unverified).
        RegistryStorageError
            If a file cannot be read for another reason (permissions, I/O error).
        """
        path = self.resolve(version)
        with self._storage_errors("read", _READ_FIX):
            return open_version(path, verify=verify)

    # ------------------------------------------------------------------ aliases

    def aliases(self) -> Aliases:
        """The lineage's champion, previous and pinned versions (see :mod:`.aliases`).

        Raises
        ------
        AliasError
            An alias file is broken or names a version that does not exist.
        """
        with self._storage_errors("read", _READ_FIX):
            return read_aliases(self.root_dir, self._is_version_dir)

    def promote(
        self,
        version: str,
        *,
        decision: Mapping[str, Any] | None = None,
        published: PublishedVersion | None = None,
    ) -> Aliases:
        """Make ``version`` the champion; the champion before it becomes ``previous``.

        The version is verified (every file against its manifest) first, unless ``published``
        is what :meth:`publish` returned for it in this process: its manifest holds the hashes
        of the very bytes publish wrote, moments ago (a fleet publishes and promotes a version
        per asset), and scoring verifies it again on every load. The aliases change under the
        registry lock, each file replaced atomically. ``decision`` (the gate's figures and
        reason) is recorded in ``aliases/decisions/<version>.json``.

        Raises
        ------
        VersionNotFoundError, InvalidTagError, ChecksumError
            The version does not exist or fails verification; nothing changes.
        RegistryLockError, RegistryStorageError
            As :meth:`publish`.
        """
        path = self.resolve(version)
        if published is None or published.path != path:
            with self._storage_errors("read", _READ_FIX):
                verify_version(path)  # every file against its manifest, before it goes live
        tag = path.name
        with self._storage_errors("promote a version in", _WRITE_FIX), self._registry_lock():
            self._still_there(tag)
            current = read_aliases(self.root_dir, self._is_version_dir)
            if decision is not None:
                write_decision(self.root_dir, tag, dict(decision))
            if current.champion != tag:
                write_alias(self.root_dir, PREVIOUS, current.champion)
                write_alias(self.root_dir, CHAMPION, tag)
            logger.info("%s: champion -> %s (previous: %s)", self.root_dir, tag, current.champion)
            # Under the lock, the aliases are what was just written: no need to read them back.
            if current.champion == tag:
                return current
            return Aliases(champion=tag, previous=current.champion, pins=current.pins)

    def record_decision(self, version: str, decision: Mapping[str, Any]) -> Path:
        """Record why ``version`` was not promoted (``aliases/decisions/<version>.json``)."""
        tag = self.resolve(version).name
        with self._storage_errors("record a decision in", _WRITE_FIX), self._registry_lock():
            return write_decision(self.root_dir, tag, dict(decision))

    def decision(self, version: str) -> dict[str, Any] | None:
        """The recorded promotion decision of ``version`` (None: none recorded)."""
        return read_decision(self.root_dir, self.resolve(version).name)

    def keep_champion(self, version: str) -> None:
        """Set ``champion`` to ``version`` when no champion is set yet (else leave it).

        A registry from before aliases follows ``latest``; a training run that does not
        promote its new version calls this with the version that was live before it, so the
        new one does not go live by moving ``latest``.
        """
        with self._storage_errors("write the aliases of", _WRITE_FIX), self._registry_lock():
            if read_alias(self.root_dir, CHAMPION, self._is_version_dir) is None:
                write_alias(self.root_dir, CHAMPION, self.resolve(version).name)

    def rollback(self) -> Aliases:
        """Swap ``champion`` and ``previous``: the previous version goes live again, and a
        second rollback undoes the first.

        Raises
        ------
        AliasError
            There is no ``previous`` version (nothing was promoted over another yet).
        """
        with self._storage_errors("roll back", _WRITE_FIX), self._registry_lock():
            current = read_aliases(self.root_dir, self._is_version_dir)
            if current.previous is None or current.champion is None:
                raise AliasError(
                    f"nothing to roll back to in {self.root_dir}: no `previous` version is set "
                    f"(champion: {current.champion}); promote a version by name instead: "
                    f"`python orchestrate.py registry promote VERSION`."
                )
            open_version(self.root_dir / current.previous, verify=True)
            write_alias(self.root_dir, CHAMPION, current.previous)
            write_alias(self.root_dir, PREVIOUS, current.champion)
            logger.info(
                "%s: rolled back, champion -> %s (previous: %s)",
                self.root_dir,
                current.previous,
                current.champion,
            )
            return read_aliases(self.root_dir, self._is_version_dir)

    def pin(self, version: str, *, pinned: bool = True) -> Aliases:
        """Pin ``version`` (retention never removes it), or unpin it with ``pinned=False``.

        Raises
        ------
        VersionNotFoundError, InvalidTagError
            No such version.
        AliasError
            Unpinning a version that is not pinned.
        """
        tag = self.resolve(version).name
        with self._storage_errors("pin a version in", _WRITE_FIX), self._registry_lock():
            if pinned:
                self._still_there(tag)
            current = read_aliases(self.root_dir, self._is_version_dir)
            if not pinned and tag not in current.pins:
                pins = ", ".join(current.pins) or "none"
                raise AliasError(
                    f"version {tag} of {self.root_dir} is not pinned (pinned: {pins}); "
                    f"nothing to unpin."
                )
            write_pin(self.root_dir, tag, pinned)
            return read_aliases(self.root_dir, self._is_version_dir)

    def collect_garbage(
        self,
        *,
        keep: int,
        older_than: timedelta | None = None,
        in_use: Collection[str] = (),
        dry_run: bool = False,
    ) -> list[RemovedVersion]:
        """Remove old versions, never one that is live, pinned or still referenced.

        Under the registry lock (a publish commits before or after, never during), every
        version is removed except: the newest ``keep``, ``latest``, ``champion``,
        ``previous``, the pinned ones, those in ``in_use`` (e.g. versions whose events are
        still stored) and, with ``older_than``, those created less than that long ago. A
        removed version is first renamed into ``.staging/`` (it stops being a version at
        once; a crash while deleting leaves a folder the next publish cleans up).

        Parameters
        ----------
        keep:
            How many of the newest versions to keep regardless (>= 0).
        older_than:
            Only versions created longer ago than this are removed (None: any age).
        in_use:
            Versions to keep because something outside the registry still refers to them.
        dry_run:
            Report what would be removed, remove nothing.

        Returns
        -------
        list[RemovedVersion]
            What was (or would be) removed, oldest first, with the bytes reclaimed.

        Raises
        ------
        ValueError
            ``keep`` is negative.
        AliasError
            An alias is broken: nothing is removed until it is repaired.
        RegistryLockError, RegistryStorageError
            As :meth:`publish`.
        """
        if isinstance(keep, bool) or not isinstance(keep, int) or keep < 0:
            raise ValueError(f"keep must be a whole number >= 0, got {keep!r}; use e.g. 5.")
        if not self.root_dir.is_dir():
            return []
        with self._storage_errors("clean up", _WRITE_FIX), self._registry_lock():
            versions = sorted(
                (
                    summarize(n, _meta_or_empty(self.root_dir / n), is_latest=False)
                    for n in self._version_names()
                ),
                key=summary_order,
            )
            kept = {v.version for v in versions[len(versions) - keep :]} if keep else set()
            kept |= read_aliases(self.root_dir, self._is_version_dir).protected()
            kept |= {self._latest_name(), *in_use} - {None}
            cutoff = None if older_than is None else datetime.now(timezone.utc) - older_than
            removed = [
                RemovedVersion(v.version, _folder_bytes(self.root_dir / v.version), v.created_at)
                for v in versions
                if v.version not in kept and (cutoff is None or _created_before(v, cutoff))
            ]
            if not dry_run:
                for version in removed:
                    self._forget(version.version)
        return removed

    def _forget(self, version: str) -> None:
        """Remove a version folder and its records (retention). Caller holds the lock."""
        remove_records(self.root_dir, version)
        staging = self.root_dir / STAGING_DIR
        staging.mkdir(exist_ok=True)
        aside = staging / f"gc-{version}-{uuid.uuid4().hex}"
        os.rename(self.root_dir / version, aside)
        fsync_dir(self.root_dir)
        shutil.rmtree(aside, ignore_errors=True)
        logger.info("removed model version %s from %s", version, self.root_dir)

    def _version_names(self) -> list[str]:
        self._check_root()
        if not self.root_dir.is_dir():
            return []
        return [name for name in os.listdir(self.root_dir) if self._is_version_dir(name)]

    def _still_there(self, tag: str) -> None:
        """Under the lock: ``tag`` was found before the lock was taken; a ``gc`` that held the
        lock meanwhile may have removed it, and an alias must never name a missing version."""
        if not self._is_version_dir(tag):
            raise VersionNotFoundError(
                f"version {tag} of {self.root_dir} was removed (registry gc?) while waiting for "
                "the registry lock; nothing changed. Check `registry list` and choose another"
            )

    def _is_version_dir(self, name: str) -> bool:
        try:
            validate_version_tag(name, allow_auto=False)
        except InvalidTagError:
            return False
        path = self.root_dir / name
        # A version whose meta.yaml was deleted is still a version: loading it names the file.
        return (
            path.is_dir()
            and not path.is_symlink()
            and any((path / own).is_file() for own in (META_FILE, MANIFEST_FILE))
        )

    def _latest_name(self) -> str | None:
        try:
            return os.readlink(self.root_dir / LATEST_NAME)
        except OSError:
            pass
        try:
            return (self.root_dir / LATEST_FILE).read_text(encoding="utf-8").strip()
        except OSError:
            return None

    def _not_found(self, version: str, latest_target: str | None = None) -> VersionNotFoundError:
        available = [summary.version for summary in self.list_versions()]
        where = f"the registry at {self.root_dir}"
        if not available:
            state = "does not exist" if not self.root_dir.exists() else "holds no versions"
            return VersionNotFoundError(
                f"no model version {version!r}: {where} {state}. Train and publish a first "
                f"version with `python main.py` (it writes to registry.root_dir), or set "
                f"registry.root_dir to the folder that holds your versions."
            )
        listed = ", ".join(available[-_MAX_LISTED:])
        if len(available) > _MAX_LISTED:
            listed = f"... ({len(available) - _MAX_LISTED} older), {listed}"
        if version == LATEST_NAME:
            problem = (
                "has no `latest` pointer"
                if latest_target is None
                else f"has a `latest` pointer naming {latest_target!r}, which is not a version"
            )
            return VersionNotFoundError(
                f"{where} {problem}. Available versions: {listed}. Pass one of them explicitly, "
                f"or {TRAIN_HINT}, which re-points `latest`."
            )
        return VersionNotFoundError(
            f"model version {version!r} not found in {where}. Available versions: {listed}. "
            f"Use one of those, or {TRAIN_HINT}."
        )


# ---------------------------------------------------------------------- helpers


@dataclass(frozen=True)
class RemovedVersion:
    """A version :meth:`ModelRegistry.collect_garbage` removed (or would remove)."""

    version: str
    bytes: int
    created_at: datetime | None


def _meta_or_empty(path: Path) -> dict[str, Any]:
    try:
        return read_meta(path)
    except MetadataError:
        return {}


def _created_before(summary: VersionSummary, cutoff: datetime) -> bool:
    """Whether a version is older than ``cutoff``; one without a readable time is not."""
    created = summary.created_at
    if created is None:
        return False
    if created.tzinfo is None:
        created = created.replace(tzinfo=timezone.utc)
    return created < cutoff


def _folder_bytes(path: Path) -> int:
    return sum(item.stat().st_size for item in path.rglob("*") if item.is_file())


def _check_run_id(run_id: object) -> str:
    if not isinstance(run_id, str) or not run_id.strip():
        raise MetadataError(
            f"run_id must be a non-empty string identifying the producing run, got {run_id!r}; "
            f"pass e.g. the orchestrator's run id."
        )
    return run_id


def _check_files(files: object) -> dict[str, bytes | bytearray | Path]:
    if not isinstance(files, Mapping) or not files:
        raise InvalidArtifactError(
            f"files must be a non-empty mapping of artifact name to bytes or a file path, got "
            f"{files!r:.80}; pass e.g. {{'models.json': b'...', 'plots/fit.png': Path('fit.png')}}."
        )
    sources: dict[str, bytes | bytearray | Path] = {}
    for name, value in files.items():
        validate_artifact_name(name)
        if isinstance(value, (bytes, bytearray)):
            sources[name] = value
        elif isinstance(value, os.PathLike):
            path = Path(value)
            if not path.is_file():
                raise InvalidArtifactError(
                    f"source file {path} for artifact {name!r} does not exist or is not a regular "
                    f"file; write it first, or pass the content as bytes."
                )
            sources[name] = path
        else:
            hint = " (a str is ambiguous: encode text, or wrap a path in pathlib.Path)"
            raise InvalidArtifactError(
                f"artifact {name!r} has a value of type {type(value).__name__}"
                f"{hint if isinstance(value, str) else ''}; pass bytes to write or a "
                f"pathlib.Path of a file to copy."
            )
    for name in sources:
        parts = name.split("/")
        for depth in range(1, len(parts)):
            folder = "/".join(parts[:depth])
            if folder in sources:
                raise InvalidArtifactError(
                    f"artifact {folder!r} is a file but {name!r} needs it to be a folder; "
                    f"rename one of them."
                )
    return dict(sorted(sources.items()))


def _write_artifacts(
    payload: Path, sources: Mapping[str, bytes | bytearray | Path]
) -> dict[str, str]:
    checksums = {}
    folders = {payload}
    each = not can_sync_filesystem()  # else one flush of the whole file system at the end
    for name, source in sources.items():
        destination = payload / name
        if destination.parent not in folders:  # each folder once, not a failing mkdir per file
            destination.parent.mkdir(parents=True, exist_ok=True)
            folders.add(destination.parent)
        if isinstance(source, Path):
            checksums[name] = copy_synced(source, destination, sync=each)
        else:
            checksums[name] = write_bytes_synced(destination, source, sync=each)
    if sync_filesystem(payload):
        return checksums
    for folder in sorted(folders, reverse=True):
        fsync_dir(folder)
    return checksums


def _discard_staging(staging: Path, writer_lock: FileLock) -> None:
    # Release first: Windows cannot delete a locked file. A cleaner that grabs the lock in
    # between only removes the same folder.
    writer_lock.release()
    shutil.rmtree(staging, ignore_errors=True)


def _is_real_dir(path: Path) -> bool:
    return path.is_dir() and not path.is_symlink()


def _remove_entry(path: Path) -> None:
    if _is_real_dir(path):
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
