"""Jinja2 rendering shared by every report: one environment, formatting filters, file output.

HTML templates (``*.html.j2``) autoescape everything; Markdown templates (``*.md.j2``) escape
through the ``md`` filter, since a crawled keyword or album title can hold ``<script>`` or
Markdown syntax. Both go next to an ``assets/`` folder that holds every picture they reference.
"""

from __future__ import annotations

import html
import json
import math
import os
import re
import time
from pathlib import Path
from typing import Any

import jinja2

from albumgan.gan_core.fileio import (
    write_text,  # atomic: a browser refreshing never sees half a page
)
from albumgan.reports.rundata import ReportError

_MD_SPECIAL = re.compile(r"([\\`*_\[\]|])")  # inline Markdown syntax; < > & become entities


def fmt(value: Any, digits: int = 4) -> str:
    """Numbers to short text: 4 significant digits, ints as they are, missing as an en dash."""
    if value is None or value == "":
        return "–"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return f"{value:.{digits}g}"
    return str(value)


def duration(seconds: Any) -> str:
    if not isinstance(seconds, (int, float)) or seconds is None:
        return "–"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"


def md(value: Any) -> str:
    """Escape for Markdown table cells and text: HTML entities first, then Markdown syntax."""
    text = html.escape(fmt(value), quote=False).replace("\n", " ")
    return _MD_SPECIAL.sub(r"\\\1", text)


def timestamp(epoch: float | None = None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(epoch or time.time()))


_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("albumgan.reports", "templates"),
    autoescape=jinja2.select_autoescape(enabled_extensions=("html", "html.j2")),
    undefined=jinja2.StrictUndefined,  # a template typo fails the test, not the reader
    trim_blocks=True,
    lstrip_blocks=True,
)
_ENV.filters.update(fmt=fmt, duration=duration, md=md)


def render(template: str, context: dict[str, Any]) -> str:
    return _ENV.get_template(template).render(**context, generated_at=timestamp())


# --- the report's folder: it owns only what it wrote -----------------------------------------
MANIFEST = ".albumgan-report.json"  # in the folder: every file the last report there wrote
PAGES = ("index.html", "report.md")
_OUR_MARK = "by <code>albumgan report</code>"  # a page written before manifests existed


def report_folder(out: str | Path) -> Path:
    """The folder a report goes to, checked before anything is written there: a page it would
    replace (index.html, report.md) that no albumgan report wrote is refused. Anything else
    in the folder (a user's notes, a logo in ``assets/``) stays as it is.

    Raises:
        ReportError: a page of that name is a file of someone else's.
    """
    out = Path(out)
    owned = _owned(out)
    for page in PAGES:
        path = out / page
        if path.exists() and page not in owned and not _written_by_us(path):
            raise ReportError(
                f"--out {out}: {page} there was not written by albumgan report, and the report "
                "would replace it; choose another folder"
            )
    return out


def write_report(out: Path, name: str, context: dict[str, Any]) -> Path:
    """Render ``name.html.j2`` -> ``out/index.html`` and ``name.md.j2`` -> ``out/report.md``;
    then remove the files an earlier report of this folder wrote that neither page references
    now (e.g. grids no longer in the timeline), and record what this one wrote (``MANIFEST``).
    A file the manifest does not list is never removed."""
    page = render(f"{name}.html.j2", context)
    markdown = render(f"{name}.md.j2", context)
    write_text(out / "index.html", page)
    write_text(out / "report.md", markdown)
    assets = out / "assets"
    written = list(PAGES)
    if assets.is_dir():
        written += sorted(
            f"assets/{path.name}"
            for path in assets.iterdir()
            if path.is_file()
            and (f"assets/{path.name}" in page or f"assets/{path.name}" in markdown)
        )
    for stale in _owned(out) - set(written):
        path = out / stale
        if path.parent == assets and path.is_file():  # only ever our own assets
            path.unlink()
    write_text(out / MANIFEST, json.dumps({"written": written}, indent=1) + "\n")
    return out / "index.html"


def _owned(out: Path) -> set[str]:
    """The files the last report in ``out`` wrote (its manifest; none without one)."""
    try:
        written = json.loads((out / MANIFEST).read_text(encoding="utf-8")).get("written", [])
    except (OSError, ValueError, AttributeError):
        return set()
    return {w for w in written if isinstance(w, str) and ".." not in Path(w).parts}


def _written_by_us(page: Path) -> bool:
    try:
        text = page.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    return _OUR_MARK in text or "by `albumgan report`" in text


def relative(target: Path, start: Path) -> str:
    """A link from the folder ``start`` to ``target`` that survives moving both together."""
    return Path(os.path.relpath(target, start)).as_posix()
