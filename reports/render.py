"""Jinja2 rendering shared by every report: one environment, formatting filters, file output.

HTML templates (``*.html.j2``) autoescape everything; Markdown templates (``*.md.j2``) escape
through the ``md`` filter, since a crawled keyword or album title can hold ``<script>`` or
Markdown syntax. Both go next to an ``assets/`` folder that holds every picture they reference.
"""

from __future__ import annotations

import html
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


def write_report(out: Path, name: str, context: dict[str, Any]) -> Path:
    """Render ``name.html.j2`` -> ``out/index.html`` and ``name.md.j2`` -> ``out/report.md``;
    then drop files of ``out/assets`` that neither references (left by an earlier report of
    the same folder, e.g. grids no longer in the timeline)."""
    page = render(f"{name}.html.j2", context)
    markdown = render(f"{name}.md.j2", context)
    write_text(out / "index.html", page)
    write_text(out / "report.md", markdown)
    assets = out / "assets"
    if assets.is_dir():
        for path in assets.iterdir():
            reference = f"assets/{path.name}"
            if path.is_file() and reference not in page and reference not in markdown:
                path.unlink()
    return out / "index.html"


def relative(target: Path, start: Path) -> str:
    """A link from the folder ``start`` to ``target`` that survives moving both together."""
    return Path(os.path.relpath(target, start)).as_posix()
