"""``albumgan data gaon``: one cover per album of the Gaon year-end album chart, with provenance.

    albumgan data gaon --out data/raw/gaon [--chart CSV] [--source itunes|musicbrainz|bing]

The chart list ships as ``data_tools/data/gaon_year_end_albums.csv`` (year, rank, artist, album,
sales, source, note): sourced but partial; its gaps stay visible (no invented entries), and users
can pass their own CSV. For each album one cover is fetched from:

- ``itunes``: the iTunes Search API (no key; ``entity=album``, ``country=kr``); the best match by
  artist and title, artwork asked for at 1200x1200; at most one request every 3 s (Apple's
  documented ~20 per minute);
- ``musicbrainz``: MusicBrainz release-group search, then the Cover Art Archive's ``front-1200``;
  a real User-Agent, at most one request per second (MusicBrainz's rule);
- ``bing``: an image search for "{artist} {album} album cover" (first usable result).

Files are ``<year>-<artist>-<album>.<ext>`` (letters, digits and dashes only), recorded in
``DIR/manifest.jsonl`` (year, rank, artist, album, source, url, match, sha256, time). Albums
already in the manifest are skipped on a re-run; albums with no cover found are listed at the end.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import threading
import time
from dataclasses import dataclass
from difflib import SequenceMatcher
from importlib import resources
from pathlib import Path

import requests
from PIL import Image

from data_tools.crawl import EXTENSIONS, CrawlError, Manifest, crawl_pair
from gan_core.fileio import read_jsonl, write_bytes

SOURCES = ("itunes", "musicbrainz", "bing")
USER_AGENT = "albumgan/0.1 (K-pop album-art DC-GAN research; https://pypi.org/project/albumgan)"
SOURCE_URLS = {
    "itunes": "https://itunes.apple.com/search",
    "musicbrainz": "https://musicbrainz.org/ws/2/release-group/",
    "coverart": "https://coverartarchive.org/release-group/{id}/front-1200",
    "bing": "https://www.bing.com/images/async?q={keyword}&first={offset}",
}
MIN_INTERVAL = {"itunes": 3.0, "musicbrainz": 1.0, "bing": 1.0}
MIN_MATCH = 0.6  # artist and title similarity both at least this, else "no cover found"


@dataclass(frozen=True)
class Album:
    year: int
    rank: int | None
    artist: str
    album: str
    sales: int | None
    source: str
    note: str

    @property
    def label(self) -> str:
        rank = f"#{self.rank}" if self.rank else "(no rank)"
        return f"{self.year} {rank} {self.artist} - {self.album}"

    @property
    def stem(self) -> str:
        """A file name stem that cannot escape the output folder."""
        slug = re.sub(r"[^\w]+", "-", f"{self.artist} {self.album}".lower()).strip("-_")
        return f"{self.year}-{slug[:80] or 'album'}"


def load_chart(path: str | Path | None = None) -> tuple[list[Album], list[str]]:
    """(albums, gaps): rows without an artist or album are gaps, reported, never guessed."""
    if path is None:
        text = (
            resources.files("data_tools")
            .joinpath("data/gaon_year_end_albums.csv")
            .read_text(encoding="utf-8")
        )
    else:
        text = Path(path).read_text(encoding="utf-8")
    albums, gaps = [], []
    for line, row in enumerate(csv.DictReader(io.StringIO(text)), start=2):
        missing = [k for k in ("year", "artist", "album") if not (row.get(k) or "").strip()]
        if missing:
            gaps.append(f"line {line}: missing {', '.join(missing)}")
            continue
        albums.append(
            Album(
                year=int(row["year"]),
                rank=int(row["rank"]) if row.get("rank") else None,
                artist=row["artist"].strip(),
                album=row["album"].strip(),
                sales=int(row["sales"]) if row.get("sales") else None,
                source=(row.get("source") or "").strip(),
                note=(row.get("note") or "").strip(),
            )
        )
    return albums, gaps


def _similar(a: str, b: str) -> float:
    def norm(s: str) -> str:
        return re.sub(r"[\W_]+", "", s.lower())

    na, nb = norm(a), norm(b)
    if not na or not nb:
        return 0.0
    if na in nb or nb in na:  # "XOXO" vs "XOXO (Repackage)", "Big Bang" vs "BIGBANG"
        return 1.0
    return SequenceMatcher(None, na, nb).ratio()


class RateLimiter:
    """At most one call per ``interval`` seconds (thread-safe)."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.lock = threading.Lock()
        self.last = 0.0

    def wait(self) -> None:
        with self.lock:
            pause = self.last + self.interval - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            self.last = time.monotonic()


class CoverFetcher:
    """Finds and downloads one cover per album from one source."""

    def __init__(
        self,
        source: str,
        urls: dict[str, str] | None = None,
        intervals: dict | None = None,
        timeout: float = 10.0,
    ) -> None:
        if source not in SOURCES:
            raise ValueError(f"source must be one of {', '.join(SOURCES)}, got {source!r}")
        self.source = source
        self.urls = {**SOURCE_URLS, **(urls or {})}
        self.limiter = RateLimiter({**MIN_INTERVAL, **(intervals or {})}[source])
        self.timeout = timeout
        self.session = requests.Session()
        self.session.headers["User-Agent"] = USER_AGENT

    def _get(self, url: str, **params) -> requests.Response:
        self.limiter.wait()
        try:
            return self.session.get(url, params=params or None, timeout=self.timeout)
        except requests.ConnectionError as exc:
            host = re.sub(r"^https?://([^/]+).*$", r"\1", url)
            raise CrawlError(f"cannot reach {host} (offline?)") from exc

    def find(self, album: Album) -> tuple[str, str] | None:
        """(image URL, what matched) or None."""
        if self.source == "itunes":
            return self._find_itunes(album)
        if self.source == "musicbrainz":
            return self._find_musicbrainz(album)
        return None  # bing downloads directly, see fetch()

    def _find_itunes(self, album: Album) -> tuple[str, str] | None:
        response = self._get(
            self.urls["itunes"],
            term=f"{album.artist} {album.album}",
            entity="album",
            country="kr",
            limit=10,
        )
        if response.status_code != 200:
            return None
        best, best_score = None, 0.0
        for hit in response.json().get("results", []):
            score = min(
                _similar(album.artist, hit.get("artistName", "")),
                _similar(album.album, hit.get("collectionName", "")),
            )
            if score > best_score and hit.get("artworkUrl100"):
                best, best_score = hit, score
        if best is None or best_score < MIN_MATCH:
            return None
        url = re.sub(r"/\d+x\d+bb\.", "/1200x1200bb.", best["artworkUrl100"])
        return url, f"{best.get('artistName')} - {best.get('collectionName')} ({best_score:.2f})"

    def _find_musicbrainz(self, album: Album) -> tuple[str, str] | None:
        query = f'releasegroup:"{album.album}" AND artist:"{album.artist}"'
        response = self._get(self.urls["musicbrainz"], query=query, fmt="json", limit=5)
        if response.status_code != 200:
            return None
        for group in response.json().get("release-groups", []):
            credit = " ".join(c.get("name", "") for c in group.get("artist-credit", []))
            score = min(
                _similar(album.artist, credit), _similar(album.album, group.get("title", ""))
            )
            if score >= MIN_MATCH:
                url = self.urls["coverart"].format(id=group["id"])
                return url, f"{credit} - {group.get('title')} ({score:.2f})"
        return None

    def download(self, url: str) -> tuple[bytes, str] | None:
        """Image bytes and format, or None for a missing/unusable answer."""
        response = self._get(url)
        if response.status_code != 200:
            return None
        try:
            with Image.open(io.BytesIO(response.content)) as image:
                return response.content, image.format
        except Exception:  # noqa: BLE001 - not an image
            return None


def fetch_covers(
    out: str | Path,
    chart: str | Path | None = None,
    source: str = "itunes",
    fetcher: CoverFetcher | None = None,
) -> tuple[list[Album], list[Album], list[str]]:
    """Fetch a cover for every album of the chart into ``out``.

    Returns:
        (albums fetched now, albums with no cover found, gaps in the chart list).

    Raises:
        CrawlError: the source cannot be reached (offline).
    """
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    albums, gaps = load_chart(chart)
    fetcher = fetcher or CoverFetcher(source)
    manifest = Manifest(folder)
    done = {(r["artist"], r["album"]) for r in read_jsonl(folder / "manifest.jsonl")}
    fetched, missing = [], []
    for album in albums:
        if (album.artist, album.album) in done:
            continue
        if fetcher.source == "bing":
            ok = _fetch_with_bing(album, folder, manifest, fetcher)
        else:
            ok = _fetch_one(album, folder, manifest, fetcher)
        (fetched if ok else missing).append(album)
    return fetched, missing, gaps


def _fetch_one(album: Album, folder: Path, manifest: Manifest, fetcher: CoverFetcher) -> bool:
    found = fetcher.find(album)
    if found is None:
        return False
    url, match = found
    downloaded = fetcher.download(url)
    if downloaded is None:
        return False
    data, fmt = downloaded
    name = f"{album.stem}.{EXTENSIONS.get(fmt, 'img')}"
    write_bytes(folder / name, data)
    manifest.append(
        {
            "file": name,
            "year": album.year,
            "rank": album.rank,
            "artist": album.artist,
            "album": album.album,
            "source": fetcher.source,
            "url": url,
            "match": match,
            "sha256": hashlib.sha256(data).hexdigest(),
            "bytes": len(data),
            "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
    )
    return True


def _fetch_with_bing(
    album: Album, folder: Path, manifest: Manifest, fetcher: CoverFetcher
) -> bool:
    """The fallback: the first usable Bing image for "{artist} {album} album cover"."""
    fetcher.limiter.wait()
    keyword = f"{album.artist} {album.album} album cover"
    before = len(read_jsonl(folder / "manifest.jsonl"))
    result = crawl_pair(
        folder, manifest, "bing", keyword, max_num=1, min_size=300, engine_url=fetcher.urls["bing"]
    )
    records = read_jsonl(folder / "manifest.jsonl")
    if result.new_files == 0 or len(records) == before:
        return False
    # Give the crawled file the album's name and the album's fields, as for the APIs.
    record = records[-1]
    name = f"{album.stem}{Path(record['file']).suffix}"
    (folder / record["file"]).rename(folder / name)
    record.update(
        file=name,
        year=album.year,
        rank=album.rank,
        artist=album.artist,
        album=album.album,
        source="bing",
        match=keyword,
    )
    lines = [json.dumps(r, ensure_ascii=False) for r in records[:-1] + [record]]
    (folder / "manifest.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return True
