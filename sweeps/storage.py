"""Where a study lives: one place that opens an Optuna storage from a path or URL.

    store = open_storage("runs/smoke/optuna.journal")        # a journal file (the default)
    store = open_storage("sqlite:///sweeps.db")               # SQLite, one worker at a time
    store = open_storage("postgresql://user@host/db")         # many machines: heartbeat, retry
    study = load_study("runs/smoke/optuna.journal", "smoke")  # an existing study, read it

``sweep run`` opens (and creates) the storage; ``sweep status`` and ``report sweep`` only load a
study that exists, and say which studies there are when the name is wrong. Every failure to open
is a ``StorageError`` with one line naming the storage (exit code 2 in the commands).
"""

from __future__ import annotations

import contextlib
import fcntl
import inspect
import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import optuna

from albumgan.sweeps.journal import SafeJournalFile
from albumgan.sweeps.spec import SweepError

__all__ = [
    "StorageError",
    "absolute_location",
    "default_location",
    "find_study",
    "load_study",
    "open_storage",
    "shown_location",
    "storage_lock",
]

# A worker that stops beating for GRACE_SECONDS (its machine died) has its trial failed and
# queued again; the retry resumes the same run directory. PostgreSQL: Optuna's own heartbeat
# (up to MAX_RETRY retries). Journal and SQLite files: the trial's "heartbeat" attribute, which
# the worker refreshes every HEARTBEAT_SECONDS (``sweeps.trial``) and a `sweep run` on any
# machine checks (``sweeps.recovery``).
HEARTBEAT_SECONDS = 30
GRACE_SECONDS = 120
MAX_RETRY = 2


def heartbeat_seconds() -> tuple[float, float]:
    """(interval, grace): ``$ALBUMGAN_HEARTBEAT_SECONDS`` and ``$ALBUMGAN_HEARTBEAT_GRACE`` when
    set (a test, a cluster with slow file systems), else the defaults above."""
    interval = float(os.environ.get("ALBUMGAN_HEARTBEAT_SECONDS") or HEARTBEAT_SECONDS)
    grace = float(os.environ.get("ALBUMGAN_HEARTBEAT_GRACE") or GRACE_SECONDS)
    return interval, max(grace, 2 * interval)


class StorageError(SweepError):
    """A storage that cannot be opened, or a study that is not in it."""


def default_location(runs_dir: Path, study_name: str) -> str:
    return str(runs_dir / study_name / "optuna.journal")


def absolute_location(location: str | None, runs_dir: Path, study_name: str) -> str:
    """The storage as every worker, started from any folder, must name it."""
    if location is None:
        return default_location(runs_dir.resolve(), study_name)
    if location.startswith("sqlite:///"):
        return "sqlite:///" + str(Path(location.removeprefix("sqlite:///")).resolve())
    return location if "://" in location else str(Path(location).resolve())


def shown_location(location: str) -> str:
    """The storage as it may be printed: a database URL's password masked."""
    if "://" not in location:
        return location
    parts = urlsplit(location)
    if parts.password is None:
        return location
    return location.replace(f":{parts.password}@", ":***@", 1)


def open_storage(location: str, create: bool = True) -> optuna.storages.BaseStorage:
    """A journal file (a path), SQLite or PostgreSQL (a URL).

    Args:
        create: make the journal's folder or the database's tables when missing (``sweep run``);
            False only opens what exists (``sweep status``, reports).

    Raises:
        StorageError: no such journal file (``create=False``), a missing driver, a database that
            cannot be reached or has no Optuna tables.
    """
    if "://" not in location:
        path = Path(location)
        if create:
            path.parent.mkdir(parents=True, exist_ok=True)
        elif not path.is_file():
            raise StorageError(f"--storage {location}: no such journal file")
        # Optuna's journal format, read up to the last complete record and repaired before a
        # write (a crash-cut tail moved aside): a damaged line never costs the study.
        return optuna.storages.JournalStorage(SafeJournalFile(path))
    from sqlalchemy.exc import SQLAlchemyError

    url = _driver_url(location)
    options: dict[str, Any] = {"skip_table_creation": not create}
    try:
        # Heartbeats are Optuna's "experimental" feature; we chose them, the user need not
        # read about it on every command.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            if url.startswith("postgresql"):
                options.update(
                    heartbeat_interval=HEARTBEAT_SECONDS,
                    grace_period=GRACE_SECONDS,
                    **_stale_retry(),
                )
            return optuna.storages.RDBStorage(url, **options)
    except (ImportError, SQLAlchemyError, optuna.exceptions.StorageInternalError) as exc:
        reason = str(exc.__cause__ or exc).strip().splitlines()[0]  # the driver's own words
        shown = shown_location(location)
        password = urlsplit(location).password
        if password:  # a driver may repeat the URL it was given
            reason = reason.replace(password, "***")
        raise StorageError(f"--storage {shown}: cannot open ({reason})") from exc


def load_study(location: str, study_name: str) -> optuna.Study:
    """An existing study; never creates a storage or a study.

    Raises:
        StorageError: the storage cannot be opened, or holds no study of that name (the message
            lists the ones it holds).
    """
    store = open_storage(location, create=False)
    try:
        return optuna.load_study(study_name=study_name, storage=store)
    except KeyError as exc:
        names = ", ".join(optuna.get_all_study_names(store)) or "-"
        raise StorageError(
            f"--study {study_name!r} is not in {shown_location(location)}; studies there: {names}"
        ) from exc


def find_study(
    location: str | None, study_name: str | None, runs_dir: str | Path = "runs"
) -> tuple[str, str]:
    """The (storage, study) a reading command means when it leaves either out.

    No ``--storage``: the journal ``sweep run`` wrote by default, ``RUNS/STUDY/optuna.journal``,
    or with no ``--study`` either, the only such journal under ``runs_dir``. No ``--study``: the
    only study in the storage.

    Raises:
        StorageError: nothing found, or more than one to choose from (each is named).
    """
    runs = Path(runs_dir)
    if location is None and study_name is not None:
        location = default_location(runs, study_name)
        if not Path(location).is_file():
            raise StorageError(
                f"no --storage given and no journal at {location} (sweep run's default for "
                f"study {study_name!r}); name it with --storage"
            )
    elif location is None:
        journals = sorted(runs.glob(f"*/{Path(default_location(runs, 'x')).name}"))
        if len(journals) != 1:
            found = ", ".join(map(str, journals)) or "none"
            raise StorageError(
                f"no --storage given: {len(journals)} study journals under {runs}/ ({found}); "
                "name one with --storage (and --study)"
            )
        location = str(journals[0])
    if study_name is None:
        names = optuna.get_all_study_names(open_storage(location, create=False))
        if len(names) != 1:
            listed = ", ".join(names) or "none"
            raise StorageError(
                f"--study: {shown_location(location)} holds {len(names)} studies ({listed}); "
                "name one with --study"
            )
        study_name = names[0]
    return location, study_name


@contextlib.contextmanager
def storage_lock(location: str) -> Iterator[None]:
    """Exclusive between ``sweep run`` commands on this machine sharing a journal or SQLite file
    (a lock file beside it). A server database (PostgreSQL) gets none: two machines that start
    the same grid in the same second may queue a point twice."""
    if "://" in location and not location.startswith("sqlite:///"):
        yield
        return
    # Not "<journal>.lock": Optuna's journal backend uses that name for its own lock.
    path = Path(location.removeprefix("sqlite:///") + ".queue.lock")
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # released when the file closes
        yield


def _driver_url(url: str) -> str:
    """A bare ``postgresql://`` URL names the psycopg2 driver we install (the ``postgres`` extra):
    SQLAlchemy 2.1 would otherwise pick psycopg 3."""
    if url.startswith("postgresql://"):
        return "postgresql+psycopg2://" + url.removeprefix("postgresql://")
    return url


def _stale_retry() -> dict[str, Any]:
    """RDBStorage's retry-on-stale-heartbeat argument: renamed in Optuna 4.9, the old name goes
    in 6.0."""
    storages = optuna.storages
    if "heartbeat_stale_trial_callback" in inspect.signature(storages.RDBStorage).parameters:
        retry = storages.RetryHeartbeatStaleTrialCallback(max_retry=MAX_RETRY)
        return {"heartbeat_stale_trial_callback": retry}
    return {"failed_trial_callback": storages.RetryFailedTrialCallback(max_retry=MAX_RETRY)}
