"""A throw-away PostgreSQL server for the sweep runner's multi-machine storage.

``postgres_url`` is ``$ALBUMGAN_TEST_POSTGRES_URL`` when CI provides a server. Otherwise it makes a
cluster with the local PostgreSQL binaries (Debian's ``postgresql``, which ``.ci/run`` installs) in
a temporary directory, listening on 127.0.0.1 only with trust auth, and removes it after the
session. Without binaries the tests that need it skip, saying so.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

URL_ENV = "ALBUMGAN_TEST_POSTGRES_URL"
SERVER_USER = "postgres"  # postgres refuses to run as root


def postgres_bindir() -> Path | None:
    """Where initdb and pg_ctl are: Debian's newest versioned dir, ``pg_config``, or PATH."""
    debian = glob.glob("/usr/lib/postgresql/*/bin/initdb")
    if debian:
        return Path(max(debian, key=lambda p: float(Path(p).parents[1].name))).parent
    if shutil.which("pg_config"):
        out = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True)
        if out.returncode == 0 and (Path(out.stdout.strip()) / "initdb").exists():
            return Path(out.stdout.strip())
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _run(argv: list[str], cwd: Path, log: Path | None = None) -> None:
    """Run a PostgreSQL tool as the server user; a failure shows its output and the server log."""
    if os.geteuid() == 0:
        argv = ["runuser", "-u", SERVER_USER, "--", *argv]
    proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=60)
    if proc.returncode != 0:
        server_log = log.read_text(errors="replace")[-3000:] if log and log.exists() else ""
        pytest.fail(f"{' '.join(argv)} failed:\n{proc.stdout}{proc.stderr}\n{server_log}")


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A SQLAlchemy URL of an empty PostgreSQL database; tests use their own study names."""
    if os.environ.get(URL_ENV):
        yield os.environ[URL_ENV]
        return
    bindir = postgres_bindir()
    if bindir is None:
        pytest.skip(
            "PostgreSQL not installed: no initdb in /usr/lib/postgresql/*/bin, pg_config --bindir "
            f"or PATH (.ci/run installs Debian's postgresql; or set {URL_ENV})"
        )
    home = Path(tempfile.mkdtemp(prefix="albumgan-pg-"))  # in /tmp: reachable by SERVER_USER
    if os.geteuid() == 0:
        try:
            owner = pwd.getpwnam(SERVER_USER)
        except KeyError:
            home.rmdir()
            pytest.skip(f"running as root and there is no {SERVER_USER!r} user to run postgres")
        os.chown(home, owner.pw_uid, owner.pw_gid)
    data, log, port = home / "data", home / "server.log", _free_port()
    try:
        _run(
            [str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust"]
            + ["--no-locale", "--encoding=UTF8", "--no-sync", "--no-instructions"],
            cwd=home,
        )
        with (data / "postgresql.conf").open("a") as conf:
            # Local only, socket in our directory; durability is not wanted for a test database.
            conf.write(
                f"listen_addresses = '127.0.0.1'\nport = {port}\n"
                f"unix_socket_directories = '{home}'\n"
                "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"
            )
        _run(
            [str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log), "-w", "-t", "60", "start"],
            cwd=home,
            log=log,
        )
        try:
            yield f"postgresql+psycopg2://postgres@127.0.0.1:{port}/postgres"
        finally:
            _run([str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"], cwd=home)
    finally:
        shutil.rmtree(home, ignore_errors=True)
