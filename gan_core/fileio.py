"""Small file helpers at the bottom of every package: atomic writes, JSON, the cache folder.

Imported by gan_core, data_tools, sweeps and reports alike; imports nothing of the project.
Also the readers of files users hand us: JSON lines with bad bytes skipped, YAML with its
aliases bounded.


A file is written to a temp file beside its target and renamed over it, so a reader (another
process, a browser, a resumed run after ``kill -9``) sees the old file or the new one, never
half of one. The result gets the permissions a plain ``open()`` would give (``mkstemp`` makes
0600 files, which other users of a shared run folder could not read).
"""

from __future__ import annotations

import json
import os
import re
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import yaml

_UMASK = os.umask(0o022)
os.umask(_UMASK)  # read once at import (os.umask can only be read by setting it)


_TEMP_SUFFIX = ".tmp"
# The temp files ``atomic_write`` makes: ".<target name>.<mkstemp's random part>.tmp".
_TEMP_NAME = re.compile(r"^\..+\.[A-Za-z0-9_]{6,}" + re.escape(_TEMP_SUFFIX) + "$")


def is_write_leftover(name: str) -> bool:
    """Whether a file name is one of ``atomic_write``'s temp files (what a writer killed in the
    middle of a write leaves; only the writer that holds a folder may remove them)."""
    return bool(_TEMP_NAME.match(name))


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
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=_TEMP_SUFFIX)
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
    """The JSON object in ``path``; None when the file is missing, not valid JSON (or UTF-8),
    or holds something other than an object."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (FileNotFoundError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


_WARNED: set[str] = set()  # JSON-lines files already warned about in this process


def read_jsonl(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Every record (JSON object) of a JSON-lines file; [] when missing. A line cut by a kill
    (or still being written by another process) is skipped, never fatal; so is a line with
    bytes that are not UTF-8 or a value that is not an object, with one warning per file."""
    path = Path(path)
    if not path.exists():
        return []
    records, odd = [], []
    for number, line in enumerate(path.read_bytes().splitlines(), start=1):
        try:
            record = json.loads(line.decode("utf-8"))
        except UnicodeDecodeError:
            odd.append(number)
            continue
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict):
            records.append(record)
        else:
            odd.append(number)
    if odd and str(path) not in _WARNED:
        _WARNED.add(str(path))
        lines = ", ".join(map(str, odd[:5])) + (", ..." if len(odd) > 5 else "")
        print(
            f"warning: {path}: skipped {len(odd)} line(s) that are not JSON records "
            f"(line {lines})",
            file=sys.stderr,
        )
    return records


def append_jsonl(path: str | os.PathLike, record: dict[str, Any]) -> None:
    """Add one record as a line (append: a kill can cut only the last line, which readers skip)."""
    with Path(path).open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(record) + "\n")


def default_cache_dir() -> Path:
    """Where datasets, decoded arrays and real-image features are cached."""
    return Path(os.environ.get("ALBUMGAN_CACHE") or Path.home() / ".cache" / "albumgan")


# --- YAML: user files, read safely --------------------------------------------------------------
MAX_YAML_VALUES = 100_000  # values a YAML document may expand to through its aliases


class YAMLTooLarge(yaml.YAMLError):
    """A YAML document whose aliases expand past ``MAX_YAML_VALUES`` (a "billion laughs")."""


def safe_yaml(text: str) -> Any:
    """``yaml.safe_load``, refusing fast a document whose aliases would expand it past
    ``MAX_YAML_VALUES`` values: the node graph is counted (shared nodes once per use, by
    memo) before anything is built.

    Raises:
        yaml.YAMLError: not YAML, or too large once expanded (``YAMLTooLarge``).
    """
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        try:
            expanded = _expanded_size(node, {})
        except RecursionError:
            raise YAMLTooLarge("nested too deeply") from None
        if expanded > MAX_YAML_VALUES:
            raise YAMLTooLarge(
                f"its aliases expand it to more than {MAX_YAML_VALUES:,} values (nested "
                "aliases, a 'billion laughs'); refused"
            )
        return loader.construct_document(node)
    finally:
        loader.dispose()


def _expanded_size(node: yaml.Node, memo: dict[int, int]) -> int:
    """Values ``node`` stands for once every alias is expanded; stops counting past the bound."""
    if id(node) in memo:
        return memo[id(node)]
    memo[id(node)] = MAX_YAML_VALUES + 1  # a node inside itself (a recursive alias): too large
    if isinstance(node, yaml.SequenceNode):
        children = node.value
    elif isinstance(node, yaml.MappingNode):
        children = [part for pair in node.value for part in pair]
    else:
        children = []
    size = 1
    for child in children:
        size += _expanded_size(child, memo)
        if size > MAX_YAML_VALUES:
            break
    memo[id(node)] = size
    return size
