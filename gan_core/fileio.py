"""Small file helpers at the bottom of every package: atomic writes, JSON, the cache folder.

Imported by gan_core, data_tools, sweeps and reports alike; imports nothing of the project.


A file is written to a temp file beside its target and renamed over it, so a reader (another
process, a browser, a resumed run after ``kill -9``) sees the old file or the new one, never
half of one. The result gets the permissions a plain ``open()`` would give (``mkstemp`` makes
0600 files, which other users of a shared run folder could not read).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

_UMASK = os.umask(0o022)
os.umask(_UMASK)  # read once at import (os.umask can only be read by setting it)


@contextmanager
def atomic_write(
    path: str | os.PathLike, mode: str = "wb", durable: bool = True, **open_args
) -> Iterator[IO]:
    """Open ``path`` for writing; the file appears under that name, complete, on success.

    Args:
        path: the target; its folder is created if needed.
        mode: ``"wb"`` or ``"w"`` (with ``encoding=...`` in ``open_args``).
        durable: fsync before the rename, so the file survives a power loss or an OS crash too.
            Without it the file is still complete or absent after ``kill -9``; files rewritten
            every few seconds (status.json, sample grids) skip it: an fsync can cost more than
            a hundred training steps on a fast GPU.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)
        with os.fdopen(fd, mode, **open_args) as handle:
            yield handle
            handle.flush()
            if durable:
                os.fsync(handle.fileno())  # the rename must not land before the data
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_write(path, "wb") as handle:
        handle.write(data)


def write_text(path: str | os.PathLike, text: str, durable: bool = True) -> None:
    with atomic_write(path, "w", durable=durable, encoding="utf-8") as handle:
        handle.write(text)


def write_json(path: str | os.PathLike, data: Any, durable: bool = True) -> None:
    """Atomic JSON write (temp file + rename); ``durable`` as in ``atomic_write``."""
    write_text(path, json.dumps(data, indent=2) + "\n", durable)


def read_json(path: str | os.PathLike) -> dict[str, Any] | None:
    """The JSON object in ``path``; None when the file is missing or not valid JSON."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def read_jsonl(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Every record of a JSON-lines file; [] when missing. A line cut by a kill (or still being
    written by another process) is skipped, never fatal."""
    path = Path(path)
    if not path.exists():
        return []
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


def append_jsonl(path: str | os.PathLike, record: dict[str, Any]) -> None:
    """Add one record as a line (append: a kill can cut only the last line, which readers skip)."""
    with Path(path).open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(record) + "\n")


def default_cache_dir() -> Path:
    """Where datasets, decoded arrays and real-image features are cached."""
    return Path(os.environ.get("ALBUMGAN_CACHE") or Path.home() / ".cache" / "albumgan")
