"""Atomic file writes, shared by run directories, datasets, caches and reports.

A file is written to a temp file beside its target and renamed over it, so a reader (another
process, a browser, a resumed run after ``kill -9``) sees the old file or the new one, never
half of one. The result gets the permissions a plain ``open()`` would give (``mkstemp`` makes
0600 files, which other users of a shared run folder could not read).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

_UMASK = os.umask(0o022)
os.umask(_UMASK)  # read once at import (os.umask can only be read by setting it)


@contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb", **open_args) -> Iterator[IO]:
    """Open ``path`` for writing; the file appears under that name, complete, on success.

    Args:
        path: the target; its folder is created if needed.
        mode: ``"wb"`` or ``"w"`` (with ``encoding=...`` in ``open_args``).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)
        with os.fdopen(fd, mode, **open_args) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())  # the rename must not land before the data
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_write(path, "wb") as handle:
        handle.write(data)


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_write(path, "w", encoding="utf-8") as handle:
        handle.write(text)
