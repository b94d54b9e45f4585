"""``albumgan data crawl``: raw album covers from image search, with provenance for every file.

    albumgan data crawl --out data/raw/crawled [--engine bing] [--engine google]
        [--keyword K]... [--max-num 100] [--min-size 300] [--urls FILE]
        [--engine-url [NAME=]TEMPLATE]...

Built on icrawler 0.6.10 (pinned: a later master commit rejects every successful download). Its
feeders find result pages and Google's parser finds image URLs; Bing's pages are read by our
``BingJsonParser`` (each result's ``m`` attribute is JSON: its ``murl`` is taken whatever the
extension, and Bing's ``turl`` thumbnail only as a flagged fallback), and our
``ProvenanceDownloader`` replaces the download step:

- files are named by content hash (``<sha256[:20]>.<format>``), never by URL, so names cannot
  escape the output folder and the same image found twice is stored once;
- every file gets one line in ``DIR/manifest.jsonl``: engine, keyword, source URL, sha256, bytes,
  width, height, format, time, and ``"thumbnail": true`` on a file that is Bing's thumbnail
  (the key is absent for full-size images); re-running skips URLs and contents already there;
- every request goes through one ``data_tools.http.PoliteSession`` per crawl: network errors,
  timeouts and 429/5xx answers are retried with exponential backoff (or the server's
  ``Retry-After``), 3 tries in all; what is still failing then (``HTTP 503 after 3 attempts``,
  ``timeout``), 404s, non-images and images smaller than ``--min-size`` are counted per reason and
  skipped, and so are result pages that could not be had; each file is written as it arrives, so
  an interrupted crawl keeps what it got. Result pages are asked for with icrawler's browser
  headers (engines serve their result markup to browsers), files with albumgan's User-Agent.

Every engine x keyword pair is counted, and pairs that returned nothing are named (icrawler's
Google crawler currently "succeeds" with zero images, icrawler issue #135). An engine that cannot
be reached at all is reported as offline; the command fails only when nothing could be reached.
"""

from __future__ import annotations

import hashlib
import html
import io
import json
import logging
import os
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from string import Formatter
from urllib.parse import quote_plus

import requests
from bs4 import BeautifulSoup
from icrawler import Crawler, ImageDownloader
from icrawler.builtin.bing import BingFeeder, BingParser
from icrawler.builtin.google import GoogleFeeder, GoogleParser
from icrawler.builtin.urllist import PseudoParser, UrlListFeeder
from PIL import Image

from albumgan.data_tools.http import (
    FILE_DEADLINE,
    MAX_FILE_BYTES,
    DownloadRefused,
    PoliteSession,
    fetch_file,
)
from albumgan.gan_core.contract import EXIT_FAILED, AlbumganError, UsageError
from albumgan.gan_core.fileio import read_jsonl, write_bytes

# The seed notebook's search terms, English and Korean.
DEFAULT_KEYWORDS = (
    "korean album cover",
    "kpop album cover",
    "kpop album art 2ne1",
    "kpop album cover boy group",
    "한국 앨범 표지",
    "소녀 그룹 앨범 표지",
    "가온 앨범 아트",
)
ENGINE_URLS = {
    "bing": "https://www.bing.com/images/async?q={keyword}&first={offset}",
    "google": "https://www.google.com/search?q={keyword}&ijn={page}&start={offset}&tbs=&tbm=isch",
}
# The placeholders each engine's feeder fills in a result-page URL template.
TEMPLATE_FIELDS = {"bing": ("keyword", "offset"), "google": ("keyword", "offset", "page")}
EXTENSIONS = {"JPEG": "jpg", "PNG": "png", "GIF": "gif", "WEBP": "webp", "BMP": "bmp"}


class CrawlError(AlbumganError):
    """Nothing could be crawled or downloaded (e.g. offline): the command ran and got nothing."""

    exit_code = EXIT_FAILED


@dataclass
class PairResult:
    """What one engine x keyword crawl produced."""

    engine: str
    keyword: str
    new_files: int = 0
    skipped: Counter = field(default_factory=Counter)  # reason -> count
    reachable: bool = True


class Manifest:
    """``manifest.jsonl``: append-only provenance; knows which URLs and contents it holds."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / "manifest.jsonl"
        self.lock = threading.Lock()
        self.urls: set[str] = set()
        self.hashes: set[str] = set()
        for record in read_jsonl(self.path):  # a line cut by a kill: its file is re-fetched
            self.urls.add(record["url"])
            self.hashes.add(record["sha256"])

    def append(self, record: dict) -> None:
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
        self.urls.add(record["url"])
        self.hashes.add(record["sha256"])


class ProvenanceDownloader(ImageDownloader):
    """icrawler downloader: content-hash names, a manifest line per file, a reason per skip.

    Set ``session`` (a ``PoliteSession``: it does the retrying), ``folder``, ``manifest``,
    ``engine``, ``keyword`` and ``result`` before each crawl.
    """

    session: PoliteSession
    folder: Path
    manifest: Manifest
    engine: str
    keyword: str
    result: PairResult
    allow_local: bool = False
    max_file_bytes: int = MAX_FILE_BYTES
    file_deadline: float = FILE_DEADLINE

    def download(self, task, default_ext, timeout=5, max_retry=3, overwrite=False, **kwargs):
        url = task["file_url"]
        with self.manifest.lock:
            if url in self.manifest.urls:
                self.result.skipped["url already crawled"] += 1
                return False
        content = self._fetch(url, timeout)
        if content is None:
            return False
        try:
            with Image.open(io.BytesIO(content)) as image:
                width, height, fmt = image.width, image.height, image.format
        except Exception:  # noqa: BLE001 - any undecodable answer is "not an image"
            self.result.skipped["not an image"] += 1
            return False
        min_size = kwargs.get("min_size") or 0
        thumbnail = bool(task.get("thumbnail"))
        if min(width, height) < min_size:
            kind = "thumbnail smaller" if thumbnail else "smaller"
            self.result.skipped[f"{kind} than {min_size} px"] += 1
            return False
        digest = hashlib.sha256(content).hexdigest()
        name = f"{digest[:20]}.{EXTENSIONS.get(fmt, 'img')}"
        with self.manifest.lock:
            if digest in self.manifest.hashes:
                self.result.skipped["same image already stored"] += 1
                return False
            if self.reach_max_num():
                self.signal.set(reach_max_num=True)
                return False
            write_bytes(self.folder / name, content)
            record = {
                "file": name,
                "engine": self.engine,
                "keyword": self.keyword,
                "url": url,
                "sha256": digest,
                "bytes": len(content),
                "width": width,
                "height": height,
                "format": fmt,
                "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            }
            if thumbnail:  # only then: lines of full-size files stay as they always were
                record["thumbnail"] = True
            self.manifest.append(record)
            self.fetched_num += 1
            self.result.new_files += 1
        task["success"], task["filename"] = True, name
        return True

    def _fetch(self, url: str, timeout: float) -> bytes | None:
        """The body of the 200 answer for ``url`` (the session retried what may pass; at most
        ``http.MAX_FILE_BYTES``, within ``http.FILE_DEADLINE``, never from a local address
        unless ``allow_local``); None, and the reason counted, when there is none."""
        if self.signal.get("reach_max_num"):
            return None
        try:
            response, body = fetch_file(
                self.session, url, timeout, self.max_file_bytes, self.file_deadline,
                self.allow_local,
            )  # fmt: skip
        except DownloadRefused as exc:
            self.result.skipped[str(exc)] += 1
            return None
        except requests.RequestException as exc:
            self.result.skipped[self.session.reason(exc)] += 1
            return None
        if response.status_code != 200:
            self.result.skipped[f"HTTP {response.status_code}"] += 1
            return None
        return body


class _CountedPages:
    """What a parser fetches result pages with: the crawl's session with a browser's headers
    (search engines serve the markup our parsers read to browsers), counting in the pair's
    result each page it could not have (icrawler's parser only logs those)."""

    def __init__(self, session: PoliteSession, result: PairResult, headers: dict) -> None:
        self.session, self.result, self.headers = session, result, headers

    def get(self, url: str, **kwargs) -> requests.Response:
        kwargs["headers"] = {**self.headers, **(kwargs.get("headers") or {})}
        try:
            response = self.session.get(url, **kwargs)
        except requests.RequestException as exc:
            self.result.skipped[f"result page {self.session.reason(exc)}"] += 1
            raise
        if response.status_code != 200:
            self.result.skipped[f"result page HTTP {response.status_code}"] += 1
        return response


def _http_url(value: object) -> str | None:
    """``value`` stripped if it is an absolute http(s) URL, else None."""
    if not isinstance(value, str):
        return None
    value = value.strip()
    return value if value.lower().startswith(("http://", "https://")) else None


def _result_json(text: str) -> dict | None:
    """A result's ``m`` attribute as a dict, or None when it is not a JSON object.

    BeautifulSoup has already decoded the entities once (``&quot;`` -> ``"``); a page escaped
    twice (``&amp;quot;``) still holds entities, so those are decoded once more.
    """
    for candidate in (text, html.unescape(text)):
        try:
            value = json.loads(candidate)
        except ValueError:
            continue
        return value if isinstance(value, dict) else None
    return None


class BingJsonParser(BingParser):
    """Bing result pages read as data, not grepped.

    Each result is an ``a.iusc`` element (older pages: any element with an ``m`` attribute inside
    ``div.imgpt``) whose ``m`` attribute is JSON. Its ``murl`` (the full-size image) is yielded
    whatever its extension, or none, query string kept. icrawler's parser instead greps
    ``murl":"(.*?)\\.jpg``, which drops ``.png``, ``.webp`` and extension-less URLs and, when a
    later field mentions ``.jpg``, glues several JSON fields into one URL.

    A result without a usable ``murl`` but with a ``turl`` (Bing's thumbnail) yields the
    thumbnail as ``dict(file_url=turl, thumbnail=True)``: icrawler's ``Parser.worker_exec`` puts
    the dict on the download queue as is, so ``ProvenanceDownloader.download`` sees the flag and
    records it. A malformed ``m`` is skipped; each URL is yielded once per page.
    """

    def parse(self, response, **kwargs):
        soup = BeautifulSoup(response.content.decode("utf-8", "ignore"), "lxml")
        seen: set[str] = set()
        for tag in soup.find_all(attrs={"m": True}):  # document order
            is_result = tag.name == "a" and "iusc" in (tag.get("class") or [])
            if not is_result and tag.find_parent("div", class_="imgpt") is None:
                continue
            meta = _result_json(tag["m"])
            if meta is None:
                continue
            if full := _http_url(meta.get("murl")):
                task = dict(file_url=full)
            elif thumb := _http_url(meta.get("turl")):
                task = dict(file_url=thumb, thumbnail=True)
            else:
                continue
            if task["file_url"] not in seen:
                seen.add(task["file_url"])
                yield task


class _BingFeeder(BingFeeder):
    """Bing's feeder with the result-page URL as a parameter (tests point it at 127.0.0.1)."""

    def feed(self, keyword, offset, max_num, filters=None, url=ENGINE_URLS["bing"]):
        for start in range(offset, offset + max_num, 20):
            self.out_queue.put(url.format(keyword=quote_plus(keyword), offset=start))


class _GoogleFeeder(GoogleFeeder):
    def feed(
        self, keyword, offset, max_num, language=None, filters=None, url=ENGINE_URLS["google"]
    ):
        for start in range(offset, offset + max_num, 100):
            self.out_queue.put(
                url.format(keyword=quote_plus(keyword), offset=start, page=start // 100)
            )


ENGINES = {
    "bing": (_BingFeeder, BingJsonParser),
    "google": (_GoogleFeeder, GoogleParser),
    "urls": (UrlListFeeder, PseudoParser),
}


def check_engine_url(engine: str, template: str) -> str:
    """``template`` if it is a usable result-page URL template for ``engine``.

    Raises:
        UsageError: not an http(s) URL, no ``{keyword}``, a placeholder the engine's feeder does
            not fill (bing: ``{keyword}``, ``{offset}``; google: also ``{page}``) or stray braces.
    """
    fields = TEMPLATE_FIELDS.get(engine)
    if fields is None:
        raise UsageError(f"no URL template for engine {engine!r}; expected one of bing, google")
    if not _http_url(template):
        raise UsageError(
            f"{engine} URL template must start with http:// or https://, got {template!r}"
        )
    try:
        names = {name for _, name, _, _ in Formatter().parse(template) if name is not None}
    except ValueError as exc:
        raise UsageError(f"{engine} URL template {template!r} is malformed: {exc}") from None
    unknown = sorted(names - set(fields))
    if unknown:
        allowed = ", ".join("{" + f + "}" for f in fields)
        raise UsageError(
            f"{engine} URL template has unknown placeholder {{{unknown[0]}}} "
            f"(allowed: {allowed}), got {template!r}"
        )
    if "keyword" not in names:
        raise UsageError(f"{engine} URL template must contain {{keyword}}, got {template!r}")
    return template


def parse_engine_urls(values: list[str], engines: tuple[str, ...]) -> dict[str, str]:
    """``--engine-url`` values (``NAME=TEMPLATE``, or a bare ``TEMPLATE`` for the only engine).

    Args:
        values: the option's values, in order.
        engines: the engines being crawled.

    Returns:
        engine -> checked template.

    Raises:
        UsageError: an unknown or uncrawled NAME, a NAME given twice, a bare template with more
            than one engine, or a template ``check_engine_url`` refuses.
    """
    crawled = sorted(set(engines))
    urls: dict[str, str] = {}
    for value in values:
        name, sep, rest = value.partition("=")
        # "bing=http://..." names its engine; a bare URL has ':' or '/' before its first '='.
        if sep and name.replace("_", "").replace("-", "").isalnum():
            engine, template = name, rest
            if engine not in TEMPLATE_FIELDS:
                raise UsageError(
                    f"--engine-url names unknown engine {engine!r}; expected bing or google"
                )
            if engine not in crawled:
                raise UsageError(
                    f"--engine-url names {engine}, which is not crawled (add --engine {engine})"
                )
        elif len(crawled) == 1:
            engine, template = crawled[0], value
        else:
            raise UsageError(
                f"--engine-url {value!r} has no NAME= prefix but {len(crawled)} engines are "
                f"crawled ({', '.join(crawled)}); write --engine-url NAME=TEMPLATE"
            )
        if engine in urls:
            raise UsageError(f"--engine-url given twice for {engine}")
        urls[engine] = check_engine_url(engine, template)
    return urls


def reachable(url: str, session: PoliteSession) -> bool:
    """Whether the engine's host answers at all (any HTTP status counts, a 503 given up on too)."""
    try:
        session.head(url.split("?")[0].format(keyword="", offset=0, page=0))
    except requests.exceptions.RetryError:
        return True
    except requests.RequestException:
        return False
    return True


def crawl_pair(
    out: Path,
    manifest: Manifest,
    engine: str,
    keyword: str,
    max_num: int,
    min_size: int,
    engine_url: str | None = None,
    queue_timeout: float = 2.0,
    request_timeout: float = 5.0,
    threads: int = 4,
    session: PoliteSession | None = None,
    allow_local: bool = False,
    max_file_bytes: int = MAX_FILE_BYTES,
    file_deadline: float = FILE_DEADLINE,
) -> PairResult:
    """One engine x keyword (for ``urls``, ``keyword`` is a list file of URLs).

    ``session`` makes every request (default: a ``PoliteSession`` of its own), result pages
    with icrawler's browser headers, files with the session's User-Agent; icrawler's own retry
    loops are turned off, so the session's ``attempts`` are the tries per request.
    """
    result = PairResult(engine, keyword)
    session = session or PoliteSession(timeout=request_timeout)
    feeder_cls, parser_cls = ENGINES[engine]
    crawler = Crawler(
        feeder_cls,
        parser_cls,
        ProvenanceDownloader,
        downloader_threads=threads,
        storage={"backend": "FileSystem", "root_dir": str(out)},
        log_level=logging.CRITICAL,
    )
    browser = dict(crawler.session.headers)  # icrawler's: a desktop Chrome's User-Agent
    crawler.session = crawler.feeder.session = session
    crawler.parser.session = _CountedPages(session, result, browser)
    downloader = crawler.downloader
    downloader.session, downloader.folder, downloader.manifest = session, out, manifest
    downloader.engine, downloader.keyword, downloader.result = engine, keyword, result
    downloader.allow_local = allow_local  # result URLs on this machine or its LAN: skipped
    downloader.max_file_bytes, downloader.file_deadline = max_file_bytes, file_deadline
    if engine == "urls":
        urls = [u.strip() for u in Path(keyword).read_text(encoding="utf-8").splitlines()]
        feeder_kwargs = {"url_list": [u for u in urls if u and not u.startswith("#")]}
    else:
        feeder_kwargs = {
            "keyword": keyword,
            "offset": 0,
            "max_num": max_num,
            "url": engine_url or ENGINE_URLS[engine],
        }
    crawler.crawl(
        feeder_kwargs=feeder_kwargs,
        parser_kwargs={
            "queue_timeout": queue_timeout,
            "req_timeout": request_timeout,
            "max_retry": 1,  # the session retries
        },
        downloader_kwargs={
            "max_num": max_num,
            "min_size": min_size,
            "queue_timeout": queue_timeout,
            "req_timeout": request_timeout,
        },
    )
    return result


def crawl(
    out: str | os.PathLike,
    engines: tuple[str, ...] = ("bing",),
    keywords: tuple[str, ...] = DEFAULT_KEYWORDS,
    max_num: int = 100,
    min_size: int = 300,
    urls_file: str | os.PathLike | None = None,
    engine_urls: dict[str, str] | None = None,
    queue_timeout: float = 2.0,
    request_timeout: float = 5.0,
    attempts: int = 3,
    backoff: float = 0.5,
    allow_local: bool = False,
    max_file_bytes: int = MAX_FILE_BYTES,
    file_deadline: float = FILE_DEADLINE,
) -> list[PairResult]:
    """Crawl every engine x keyword into ``out``; see the module docstring.

    Args:
        attempts: tries per request, in all (``PoliteSession``).
        backoff: the session's backoff factor in seconds.
        allow_local: also fetch result URLs on loopback or private addresses (a search result
            pointing into this machine's network is skipped otherwise; tests use local servers).
        max_file_bytes: a file whose body (declared or read) is larger is skipped unbuffered.
        file_deadline: seconds one file may take in all; a slower one is given up on.

    Raises:
        UsageError: an ``engine_urls`` template that ``check_engine_url`` refuses.
        CrawlError: no engine could be reached (offline).
    """
    engine_urls = {e: check_engine_url(e, t) for e, t in (engine_urls or {}).items()}
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    manifest = Manifest(folder)
    session = PoliteSession(attempts=attempts, backoff=backoff, timeout=request_timeout)
    pairs = [(engine, keyword) for engine in engines for keyword in keywords]
    if urls_file:
        pairs.append(("urls", str(urls_file)))
    results = []
    for engine, keyword in pairs:
        url = engine_urls.get(engine, ENGINE_URLS.get(engine, ""))
        if engine != "urls" and not reachable(url, session):
            results.append(PairResult(engine, keyword, reachable=False))
            continue
        results.append(
            crawl_pair(
                folder,
                manifest,
                engine,
                keyword,
                max_num,
                min_size,
                url or None,
                queue_timeout,
                request_timeout,
                session=session,
                allow_local=allow_local,
                max_file_bytes=max_file_bytes,
                file_deadline=file_deadline,
            )
        )
    if pairs and not any(r.reachable for r in results):
        raise CrawlError(
            "no search engine could be reached (offline?): "
            + ", ".join(sorted({r.engine for r in results}))
        )
    return results


def report(results: list[PairResult]) -> str:
    """The per-pair table printed at the end of a crawl."""
    lines = [f"{'engine':<7} {'new':>5}  keyword / notes"]
    for r in results:
        if not r.reachable:
            note = "UNREACHABLE (offline?)"
        elif r.new_files == 0:
            note = "returned nothing"
        else:
            note = ""
        skipped = ", ".join(f"{reason}: {n}" for reason, n in sorted(r.skipped.items()))
        extra = "; ".join(part for part in (note, skipped) if part)
        lines.append(
            f"{r.engine:<7} {r.new_files:>5}  {r.keyword}" + (f"  [{extra}]" if extra else "")
        )
    empty = [f"{r.engine}: {r.keyword}" for r in results if r.reachable and r.new_files == 0]
    if empty:
        lines.append("returned nothing: " + " | ".join(empty))
    lines.append(f"total new files: {sum(r.new_files for r in results)}")
    return "\n".join(lines)
