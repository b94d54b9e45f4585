"""A journal file that survives a crash: Optuna's journal format, read and written defensively.

Optuna's journal is one JSON record per line, appended. A crash or a full disk in the middle of
an append leaves the last line cut (or garbage); Optuna's own reader then fails as soon as any
record follows it, and the next append puts one there, so the whole study becomes unreadable.
``SafeJournalFile`` reads the same file up to its last complete record and says once, on one
line, that a damaged tail was found and where; before it appends after a damaged tail it moves
the tail to ``<journal>.damaged`` (nothing is thrown away) and truncates the journal to its last
good record. A write that fails (a full disk) is undone the same way and raised as a
``JournalWriteError``: one line, exit 1, the journal as readable as before.

It takes the lock Optuna's own journal backend takes (a symlink beside the file), so plain Optuna
processes (optuna-dashboard, a user's script) and ours still write one at a time.

    storage = optuna.storages.JournalStorage(SafeJournalFile("runs/smoke/optuna.journal"))
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from optuna.storages.journal import BaseJournalBackend, JournalFileSymlinkLock

from albumgan.gan_core.contract import EXIT_FAILED
from albumgan.sweeps.spec import SweepError

__all__ = ["DAMAGED_SUFFIX", "JournalWriteError", "NotAJournal", "SafeJournalFile"]

DAMAGED_SUFFIX = ".damaged"  # beside the journal: every tail ever cut from it, appended

_WARNED: set[tuple[str, int]] = set()  # (journal, offset): a command opens a journal twice or so


class JournalWriteError(SweepError):
    """The journal could not be written (a full disk, a file-size limit): nothing half-written
    stays in it; the command ends with exit 1."""

    exit_code = EXIT_FAILED


class NotAJournal(SweepError):
    """A file named as a journal that holds no journal records (a YAML file, say)."""


class SafeJournalFile(BaseJournalBackend):
    """Optuna's journal file format, read up to the last complete record and repaired (tail
    moved aside, never lost) before anything is appended after a damaged one."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self._lock = JournalFileSymlinkLock(str(self.path))  # the lock Optuna's backend takes
        if not self.path.exists():
            self.path.touch()
        # Byte offset where each record's line starts, as far as this process has read:
        # reads go on from the last one instead of from the top.
        self._offsets: dict[int, int] = {0: 0}
        self._check_is_journal()

    # --- reading -------------------------------------------------------------------------------
    def read_logs(self, log_number_from: int) -> Iterator[dict[str, Any]]:
        start = log_number_from if log_number_from in self._offsets else 0
        damaged_at = None
        for number, record, end in self._records(start):
            if record is None:  # the first line that is not a complete record
                damaged_at = end
                break
            if number >= log_number_from:
                yield record
        if damaged_at is not None:
            self._warn_if_damaged(damaged_at)

    def _records(self, number: int) -> Iterator[tuple[int, dict[str, Any] | None, int]]:
        """(record number, record, offset after it) from record ``number`` on; at a line that
        is cut or not a JSON object: (number, None, its offset), then nothing."""
        offset = self._offsets[number]
        with self.path.open("rb") as handle:
            handle.seek(offset)
            data = handle.read()
        start = 0
        while start < len(data):
            stop = data.find(b"\n", start)
            if stop < 0:  # cut: no line end (a crash, or another process mid-append)
                yield number, None, offset + start
                return
            record = _record(data[start:stop])
            if record is None:
                yield number, None, offset + start
                return
            start = stop + 1
            self._offsets[number + 1] = offset + start
            yield number, record, offset + start
            number += 1

    def _good_end(self) -> tuple[int, int]:
        """(offset after the last complete record, file size), read to the end of the file."""
        last = max(self._offsets)
        end = self._offsets[last]
        for _number, record, after in self._records(last):
            if record is None:
                return after, self.path.stat().st_size
            end = after
        return end, self.path.stat().st_size

    def _warn_if_damaged(self, offset: int) -> None:
        """Whether what follows ``offset`` is damage or another process's append in flight is
        decided under the lock (appends happen under it, whole)."""
        if (str(self.path.resolve()), offset) in _WARNED:
            return
        try:
            with _held(self._lock, self.path):
                end, size = self._good_end()
        except JournalWriteError:  # no lock to be had (a full disk): say what is seen
            end, size = self._good_end()
        seen = (str(self.path.resolve()), end)
        if end < size and seen not in _WARNED:
            _WARNED.add(seen)
            print(
                f"warning: {self.path}: damaged tail ({size - end} bytes after byte {end}) "
                f"ignored: the study is read up to its last complete record; the next write "
                f"moves the tail to {self.path.name}{DAMAGED_SUFFIX}",
                file=sys.stderr,
                flush=True,
            )

    def _check_is_journal(self) -> None:
        with self.path.open("rb") as handle:
            head = handle.read(64).lstrip()
        if head and not head.startswith(b'{"op_code"'):
            raise NotAJournal(
                f"--storage {self.path}: not an Optuna journal (its first line is not a journal "
                "record); name a journal file, a new path, or a sqlite:/// or postgresql:// URL"
            )

    # --- writing -------------------------------------------------------------------------------
    def append_logs(self, logs: list[dict[str, Any]]) -> None:
        text = "".join(json.dumps(log, separators=(",", ":")) + "\n" for log in logs)
        with _held(self._lock, self.path):
            end, size = self._good_end()
            if end < size:
                self._move_tail_aside(end, size)
            try:
                with self.path.open("ab") as handle:
                    handle.write(text.encode("utf-8"))
                    handle.flush()
                    os.fsync(handle.fileno())
            except OSError as exc:
                self._truncate(end)  # what was written of these records goes again
                raise JournalWriteError(
                    f"cannot write the journal {self.path} ({exc.strerror or exc}); it keeps "
                    "every record written before; free space and run the command again"
                ) from exc

    def _move_tail_aside(self, end: int, size: int) -> None:
        with self.path.open("rb") as handle:
            handle.seek(end)
            tail = handle.read(size - end)
        aside = self.path.with_name(self.path.name + DAMAGED_SUFFIX)
        try:
            with aside.open("ab") as handle:
                handle.write(tail if tail.endswith(b"\n") else tail + b"\n")
                handle.flush()
                os.fsync(handle.fileno())
        except OSError as exc:
            raise JournalWriteError(
                f"cannot move the damaged tail of {self.path} to {aside} ({exc.strerror or exc}); "
                "the journal is left as it was"
            ) from exc
        self._truncate(end)
        print(
            f"warning: {self.path}: its damaged tail ({size - end} bytes after byte {end}) was "
            f"moved to {aside}; the journal goes on from its last complete record",
            file=sys.stderr,
            flush=True,
        )

    def _truncate(self, end: int) -> None:
        try:
            os.truncate(self.path, end)
        except OSError:
            pass  # the reader still stops at the last complete record


def _record(line: bytes) -> dict[str, Any] | None:
    try:
        record = json.loads(line)
    except (UnicodeDecodeError, ValueError):
        return None
    return record if isinstance(record, dict) and "op_code" in record else None


class _held:
    """Optuna's journal lock as a context manager (its own helper is private)."""

    def __init__(self, lock: JournalFileSymlinkLock, path: Path) -> None:
        self.lock, self.path = lock, path

    def __enter__(self) -> None:
        try:
            self.lock.acquire()
        except OSError as exc:  # the lock is a symlink: a full disk cannot make one
            raise JournalWriteError(
                f"cannot lock the journal {self.path} ({exc.strerror or exc})"
            ) from exc

    def __exit__(self, *exc: object) -> None:
        self.lock.release()
