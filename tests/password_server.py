"""A throw-away PostgreSQL cluster that checks passwords, to provoke real authentication failures.

The shared test server trusts every login on 127.0.0.1, so a wrong password cannot fail there.
This one is made with ``initdb --auth=scram-sha-256`` in a temporary folder and started with
``pg_ctl`` on a free port of 127.0.0.1; :meth:`PasswordCluster.stop` removes it. initdb refuses
to run as root, so as root the server binaries run as the ``postgres`` user (``runuser``).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

SUPERUSER = "postgres"
SUPERUSER_PASSWORD = "Sup3r/p@ss w&rd=%x"
"""Holds every character that must be percent-encoded in a URL."""


class ClusterUnavailable(RuntimeError):
    """The cluster cannot be made here (no server binaries, no ``postgres`` user, ...)."""


@dataclass(frozen=True)
class PasswordServer:
    """Where the cluster listens; the superuser's password is :data:`SUPERUSER_PASSWORD`."""

    host: str
    port: int

    def url(self, user: str = SUPERUSER, password: str | None = SUPERUSER_PASSWORD) -> str:
        """``postgresql://user:password@host:port/postgres`` with the password percent-encoded."""
        userinfo = user if password is None else f"{user}:{quote(password, safe='')}"
        return f"postgresql://{userinfo}@{self.host}:{self.port}/postgres"


def _server_bindir() -> Path:
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True):
        return Path(candidate).parent
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    raise ClusterUnavailable(
        "no PostgreSQL server binaries (initdb, pg_ctl) in /usr/lib/postgresql/*/bin or on PATH"
    )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class PasswordCluster:
    """Create, start and remove the cluster (see the module docstring)."""

    def __init__(self) -> None:
        self._bindir = _server_bindir()
        self._as_postgres = os.geteuid() == 0
        self._folder = Path(tempfile.mkdtemp(prefix="mlbox-pgauth-"))
        self._data = self._folder / "data"
        self._started = False

    def _run(self, tool: str, *args: str) -> None:
        command = [str(self._bindir / tool), *args]
        if self._as_postgres:
            command = ["runuser", "-u", SUPERUSER, "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode:
            log = self._folder / "server.log"
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise ClusterUnavailable(
                f"{tool} failed (exit {done.returncode}): {done.stderr.strip()} {tail}".strip()
            )

    def start(self) -> PasswordServer:
        """Create and start the cluster; the caller must :meth:`stop` it.

        Raises:
            ClusterUnavailable: a step failed; the message says which and why.
        """
        password_file = self._folder / "password"
        password_file.write_text(SUPERUSER_PASSWORD + "\n", encoding="utf-8")
        if self._as_postgres:
            try:
                account = pwd.getpwnam(SUPERUSER)
            except KeyError:
                raise ClusterUnavailable(
                    "running as root, and there is no 'postgres' user to run initdb as"
                ) from None
            for path in (self._folder, password_file):
                os.chown(path, account.pw_uid, account.pw_gid)
        self._run(
            "initdb",
            "-D",
            str(self._data),
            "-U",
            SUPERUSER,
            "--auth=scram-sha-256",
            f"--pwfile={password_file}",
            "--no-sync",
        )
        port = _free_port()
        options = f"-p {port} -k {self._folder} -c listen_addresses=127.0.0.1 -c fsync=off"
        # pg_ctl waits until the server accepts connections; -t is only a last resort.
        log = str(self._folder / "server.log")
        self._run("pg_ctl", "-D", str(self._data), "-l", log, "-o", options, "-t", "600", "start")
        self._started = True
        return PasswordServer(host="127.0.0.1", port=port)

    def stop(self) -> None:
        """Stop the server (when it runs) and remove every file of the cluster."""
        try:
            if self._started:
                self._run("pg_ctl", "-D", str(self._data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self._folder, ignore_errors=True)
