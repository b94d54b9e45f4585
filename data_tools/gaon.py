"""``albumgan data gaon``: one full-size cover per album of the Gaon year-end album chart.

    albumgan data gaon --out data/raw/gaon [--chart CSV] [--source itunes,musicbrainz,bing]
        [--min-size 300] [--source-url NAME=BASE]...

The chart list ships as ``data_tools/data/gaon_year_end_albums.csv`` (year, rank, artist, album,
sales, source, note, artist_alias): sourced but partial; its gaps stay visible (no invented
entries), and users can pass their own CSV. ``artist_alias`` (optional, ``|``-separated) holds
other spellings of the artist, such as its Hangul name: Korean services answer in either script.

Sources, tried per album in the order given until one yields a cover of at least ``--min-size``
pixels on its shorter side:

- ``itunes``: the iTunes Search API (no key; ``entity=album``, ``country=kr``); the best match by
  artist and title; the artwork URL, in either of Apple's forms (``.../100x100bb.jpg`` or
  ``.../name.100x100-75.jpg``), rewritten to ask for 1200x1200; at most one request every 3 s
  to its host (Apple's documented ~20 per minute);
- ``musicbrainz``: a MusicBrainz release-group search (a real User-Agent, at most one request per
  second, MusicBrainz's rule), then the Cover Art Archive: its index of the release group gives
  the front image at full size (``image``), else its largest thumbnail; without an index,
  ``front-1200``, ``front-500`` and ``front`` are tried in turn;
- ``bing``: an image search for "{artist} {album} album cover": the first result of at least
  ``--min-size`` pixels.

A cover smaller than ``--min-size`` is never used: it is moved to ``DIR/set-aside/`` with reason
``too small`` in its manifest line (``data prepare`` skips it), and the next source is tried.
Names match across scripts and spellings: the chart's artist or any alias against the service's
artist names (MusicBrainz credits, names, sort names and aliases count), after folding width
(full-width letters), case, punctuation (``·``, ``&``, ``×``, ...) and edition suffixes
("(Deluxe Edition)", "- EP"); MusicBrainz's own score vouches for an artist written in a script
we have no alias for.

Files are ``<year>-<artist>-<album>.<ext>`` (letters, digits and dashes only), recorded in
``DIR/manifest.jsonl`` (year, rank, artist, album, source, url, size_asked, width, height, match,
sha256, bytes, time; ``set_aside`` on covers kept aside). Albums already in the manifest are
skipped on a re-run; albums no source could serve are listed at the end with what each source
said. ``--source-url NAME=BASE`` points a service at a mirror or proxy: BASE replaces the scheme
and host and keeps the paths (``itunes``, ``musicbrainz``, ``coverart``), or is the whole result
page template for ``bing`` (as ``data crawl --engine-url``).

Every request goes through one ``data_tools.http.PoliteSession``: 429/5xx answers, broken
connections and timeouts are retried (3 tries, exponential backoff or the server's
``Retry-After``). ``MIN_INTERVAL`` holds for each service's own host (Apple's, MusicBrainz's,
...); a mirror or proxy set with ``--source-url`` is paced only by an interval the caller gives
for its service (``CoverFetcher(intervals=...)``). A service that still fails stops the command
with one line (``CrawlError``: "gave up on HOST after 3 attempts (HTTP 503)", "cannot reach HOST
after 3 attempts (offline?)"); an image that still fails is that album's problem, listed at the
end, and the next URL or source is tried.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import time
import unicodedata
from collections import Counter
from dataclasses import dataclass, field, replace
from difflib import SequenceMatcher
from importlib import resources
from pathlib import Path
from urllib.parse import urlsplit

import requests
from PIL import Image

from albumgan.data_tools.crawl import ENGINE_URLS, EXTENSIONS, CrawlError, Manifest, crawl_pair
from albumgan.data_tools.http import DownloadRefused, PoliteSession, fetch_file, host_of
from albumgan.gan_core.contract import UsageError
from albumgan.gan_core.fileio import read_jsonl, write_bytes, write_text

SOURCES = ("itunes", "musicbrainz", "bing")
# Where each service lives; ``--source-url NAME=BASE`` replaces scheme and host, keeps the paths.
SERVICE_BASES = {
    "itunes": "https://itunes.apple.com",
    "musicbrainz": "https://musicbrainz.org",
    "coverart": "https://coverartarchive.org",
}
SERVICE_PATHS = {
    "itunes": "/search",
    "musicbrainz": "/ws/2/release-group/",
    "coverart": "/release-group/{id}",
}
SERVICES = (*SERVICE_BASES, "bing")  # what --source-url may name
# Seconds between two requests to a service's own host; "download": any other host (images).
MIN_INTERVAL = {"itunes": 3.0, "musicbrainz": 1.0, "coverart": 1.0, "bing": 1.0, "download": 0.0}
MIN_MATCH = 0.6  # artist and title similarity both at least this, else "no match"
MUSICBRAINZ_TRUSTED = 90  # MusicBrainz's own score (0-100) that vouches for an artist we cannot
# compare (a Hangul credit for a Latin chart name without an alias): its search matched the
# artist field, aliases included, server-side.
ITUNES_SIZE = 1200
# Apple's artwork URLs name their size as ``/100x100bb.jpg`` or ``/name.100x100-75.jpg``.
_ITUNES_DIMENSIONS = re.compile(r"(?<=[/.])\d+x\d+(?=(?:bb|-\d+)\.\w+$)")
COVER_ART_FALLBACK = ("front-1200", "front-500", "front")
SET_ASIDE = "set-aside"  # DIR/set-aside/: covers below --min-size, never part of the dataset
# Edition markers that differ between a chart and a store for the same album.
_EDITION = re.compile(
    r"\((?:[^()]*\b(?:edition|deluxe|remaster(?:ed)?|version|ver)\b[^()]*)\)"
    r"|\s-\s*(?:ep|single)\s*$",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Album:
    year: int
    rank: int | None
    artist: str
    album: str
    sales: int | None
    source: str
    note: str
    aliases: tuple[str, ...] = ()  # other spellings of the artist (the chart's artist_alias)

    @property
    def label(self) -> str:
        rank = f"#{self.rank}" if self.rank else "(no rank)"
        return f"{self.year} {rank} {self.artist} - {self.album}"

    @property
    def artist_names(self) -> tuple[str, ...]:
        return (self.artist, *self.aliases)

    file_stem: str = ""  # set by load_chart: unique within the chart

    @property
    def stem(self) -> str:
        """A file name stem that cannot escape the output folder, unique within its chart
        (two albums whose names fold to one slug, emoji stripped, get -2, -3, ...)."""
        return self.file_stem or _slug_stem(self.year, self.artist, self.album)


def _slug_stem(year: int, artist: str, album: str) -> str:
    slug = re.sub(r"[^\w]+", "-", f"{artist} {album}".lower()).strip("-_")
    return f"{year}-{slug[:80] or 'album'}"


CHART_COLUMNS = (
    "year",
    "artist",
    "album",
)  # needed; rank, sales, source, note, artist_alias: optional


class ChartError(UsageError):
    """A chart file that cannot be read as a chart (one line naming what is wrong)."""


def load_chart(path: str | Path | None = None) -> tuple[list[Album], list[str]]:
    """(albums, gaps): rows without an artist or album are gaps, reported, never guessed.

    A file saved by a spreadsheet program reads too: a UTF-8 byte-order mark, ``;`` or tab
    separators (sniffed from the header).

    Raises:
        ChartError: the file cannot be read, or its header lacks a needed column.
    """
    if path is None:
        text = (
            resources.files("albumgan.data_tools")
            .joinpath("data/gaon_year_end_albums.csv")
            .read_text(encoding="utf-8")
        )
    else:
        try:
            text = Path(path).read_text(encoding="utf-8-sig")  # -sig: a BOM is not "year"
        except (OSError, UnicodeDecodeError) as exc:
            raise ChartError(f"--chart {path}: cannot be read as UTF-8 text ({exc})") from exc
    header = text.split("\n", 1)[0]
    try:
        dialect = csv.Sniffer().sniff(header, delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.DictReader(io.StringIO(text), dialect=dialect)
    columns = [c.strip().lower() for c in reader.fieldnames or []]
    missing = [c for c in CHART_COLUMNS if c not in columns]
    if missing:
        raise ChartError(
            f"--chart {path}: no {', '.join(missing)} column (its header has "
            f"{', '.join(columns) or 'nothing'}; needed: {', '.join(CHART_COLUMNS)})"
        )
    albums, gaps = [], []
    for line, raw in enumerate(reader, start=2):
        row = {(k or "").strip().lower(): (v or "") for k, v in raw.items() if isinstance(v, str)}
        missing = [k for k in CHART_COLUMNS if not row.get(k, "").strip()]
        if missing:
            gaps.append(f"line {line}: missing {', '.join(missing)}")
            continue
        try:
            year, rank, sales = (
                int(row[key]) if row.get(key, "").strip() else None
                for key in ("year", "rank", "sales")
            )
        except ValueError:
            gaps.append(f"line {line}: year, rank or sales is not a whole number")
            continue
        aliases = tuple(a.strip() for a in row.get("artist_alias", "").split("|") if a.strip())
        albums.append(
            Album(
                year=year,
                rank=rank,
                artist=row["artist"].strip(),
                album=row["album"].strip(),
                sales=sales,
                source=row.get("source", "").strip(),
                note=row.get("note", "").strip(),
                aliases=aliases,
            )
        )
    return _unique_stems(albums), gaps


def _unique_stems(albums: list[Album]) -> list[Album]:
    """Each album its own file name: the second of a slug gets -2, the third -3, ..."""
    seen: Counter[str] = Counter()
    unique = []
    for album in albums:
        stem = album.stem
        seen[stem] += 1
        if seen[stem] > 1:
            stem = f"{stem}-{seen[stem]}"
        unique.append(replace(album, file_stem=stem))
    return unique


# ------------------------------------------------------------------------------------------------
# Names
# ------------------------------------------------------------------------------------------------


def normalise(name: str) -> str:
    """A name folded for comparing: width (NFKC), case, edition suffixes, then everything that
    is not a letter or digit (spaces, ``·``, ``&``, ``×``, quotes, dashes)."""
    text = unicodedata.normalize("NFKC", name).casefold()
    text = _EDITION.sub(" ", text)
    return re.sub(r"[\W_]+", "", text)


def similarity(a: str, b: str) -> float:
    """1.0 for the same name after ``normalise`` or one containing the other ("XOXO" in "XOXO
    Repackage", "Big Bang" and "BIGBANG"), else difflib's ratio."""
    na, nb = normalise(a), normalise(b)
    if not na or not nb:
        return 0.0
    if na in nb or nb in na:
        return 1.0
    return SequenceMatcher(None, na, nb).ratio()


def closeness(a: str, b: str) -> float:
    """difflib's ratio of the normalised names, without ``similarity``'s containment rule."""
    return SequenceMatcher(None, normalise(a), normalise(b)).ratio()


def best_similarity(ours: tuple[str, ...] | list[str], theirs: list[str]) -> float:
    return max((similarity(a, b) for a in ours for b in theirs if b), default=0.0)


def itunes_full_size(url: str, size: int = ITUNES_SIZE) -> str | None:
    """The artwork URL asking for ``size`` x ``size``, or None when the URL names no size."""
    rewritten, count = _ITUNES_DIMENSIONS.subn(f"{size}x{size}", url)
    return rewritten if count else None


def _musicbrainz_artist_names(group: dict) -> list[str]:
    names = []
    for credit in group.get("artist-credit", []):
        if not isinstance(credit, dict):
            continue
        artist = credit.get("artist") or {}
        names += [credit.get("name", ""), artist.get("name", ""), artist.get("sort-name", "")]
        names += [alias.get("name", "") for alias in artist.get("aliases") or []]
    credit = "".join(
        c.get("name", "") + c.get("joinphrase", "")
        for c in group.get("artist-credit", [])
        if isinstance(c, dict)
    )
    return [credit, *names]


@dataclass(frozen=True)
class Candidate:
    """What a source found for an album: image URLs to try in order, and why it matched."""

    urls: tuple[str, ...]
    match: str
    size_asked: tuple[str, ...]  # per URL: "1200x1200", "original", "front-500", ...


@dataclass
class Cover:
    """One downloaded image."""

    url: str
    size_asked: str
    data: bytes
    format: str
    width: int
    height: int


class CoverFetcher:
    """Finds and downloads album covers from iTunes, MusicBrainz + Cover Art Archive and Bing."""

    def __init__(
        self,
        urls: dict[str, str] | None = None,
        intervals: dict[str, float] | None = None,
        timeout: float = 10.0,
        attempts: int = 3,
        backoff: float = 0.5,
        allow_local: bool = False,
    ) -> None:
        """
        Args:
            urls: per service (``itunes``, ``musicbrainz``, ``coverart``) a BASE replacing
                ``SERVICE_BASES``' scheme and host; ``bing``: the result page template.
            intervals: seconds between requests, per service, for the host it is asked at
                (mirror or not; a host several services share gets the longest); the
                services' own hosts keep ``MIN_INTERVAL`` otherwise, other hosts ``download``.
            timeout, attempts, backoff: per request, as ``PoliteSession`` takes them.
            allow_local: also download Bing's result URLs on loopback or private addresses
                (``data crawl --allow-local``; the API services' covers always download).
        """
        self.allow_local = allow_local
        urls = dict(urls or {})
        unknown = sorted(set(urls) - set(SERVICES))
        if unknown:
            raise UsageError(f"--source-url: unknown service {unknown[0]!r}; one of {SERVICES}")
        given = dict(intervals or {})
        unknown = sorted(set(given) - set(MIN_INTERVAL))
        if unknown:
            raise UsageError(f"intervals: unknown service {unknown[0]!r}; one of {MIN_INTERVAL}")
        self.bing_template = urls.pop("bing", ENGINE_URLS["bing"])
        self.bases = {**SERVICE_BASES, **{k: v.rstrip("/") for k, v in urls.items()}}
        own = {**SERVICE_BASES, "bing": ENGINE_URLS["bing"]}
        per_host = {host_of(url): MIN_INTERVAL[service] for service, url in own.items()}
        chosen: dict[str, float] = {}
        for service, url in {**self.bases, "bing": self.bing_template}.items():
            if service in given:
                host = host_of(url)
                chosen[host] = max(chosen.get(host, 0.0), given[service])
        self.session = PoliteSession(
            attempts=attempts,
            backoff=backoff,
            timeout=timeout,
            intervals={**per_host, **chosen},
            default_interval=given.get("download", MIN_INTERVAL["download"]),
        )

    def url(self, service: str, **fields) -> str:
        return self.bases[service] + SERVICE_PATHS[service].format(**fields)

    def rebase(self, url: str, service: str) -> str:
        """A URL the service itself handed out (a Cover Art Archive index's image links),
        pointed at the mirror when one is set."""
        default = urlsplit(SERVICE_BASES[service])
        parts = urlsplit(url)
        if self.bases[service] == SERVICE_BASES[service] or parts.hostname != default.hostname:
            return url
        tail = parts.path + (f"?{parts.query}" if parts.query else "")
        return self.bases[service] + tail

    def _get(self, url: str, **params) -> requests.Response:
        """A service's answer (any status but one retried in vain).

        Raises:
            CrawlError: the session gave up (what it got, in one line).
        """
        try:
            return self.session.get(url, params=params or None)
        except requests.RequestException as exc:
            raise CrawlError(self.session.explain(exc)) from exc

    # -- finding --------------------------------------------------------------------------------

    def find(self, album: Album, source: str) -> Candidate | None:
        if source == "itunes":
            return self._find_itunes(album)
        if source == "musicbrainz":
            return self._find_musicbrainz(album)
        raise ValueError(f"no search for source {source!r}")  # bing: see fetch_covers

    def _find_itunes(self, album: Album) -> Candidate | None:
        response = self._get(
            self.url("itunes"),
            term=f"{album.artist} {album.album}",
            entity="album",
            country="kr",
            limit=10,
        )
        if response.status_code != 200:
            return None
        best, best_key = None, (0.0, 0.0)
        for hit in response.json().get("results", []):
            title = hit.get("collectionName", "")
            score = min(
                best_similarity(album.artist_names, [hit.get("artistName", "")]),
                similarity(album.album, title),
            )
            # Of hits that contain the title, the closest: the album, not its karaoke version.
            key = (score, closeness(album.album, title))
            if key > best_key and hit.get("artworkUrl100"):
                best, best_key = hit, key
        best_score = best_key[0]
        if best is None or best_score < MIN_MATCH:
            return None
        artwork = best["artworkUrl100"]
        full = itunes_full_size(artwork)
        match = f"{best.get('artistName')} - {best.get('collectionName')} ({best_score:.2f})"
        if full is None:  # a form we do not know: take it as it is, the size check decides
            return Candidate((artwork,), match, ("as given",))
        return Candidate((full,), match, (f"{ITUNES_SIZE}x{ITUNES_SIZE}",))

    def _find_musicbrainz(self, album: Album) -> Candidate | None:
        query = f'releasegroup:"{album.album}" AND artist:"{album.artist}"'
        response = self._get(self.url("musicbrainz"), query=query, fmt="json", limit=5)
        if response.status_code != 200:
            return None
        for group in response.json().get("release-groups", []):
            title = similarity(album.album, group.get("title", ""))
            names = _musicbrainz_artist_names(group)  # the joined credit first
            artist = best_similarity(album.artist_names, names)
            score = int(group.get("score", 0) or 0)
            if title < MIN_MATCH or (artist < MIN_MATCH and score < MUSICBRAINZ_TRUSTED):
                continue
            match = (
                f"{names[0]} - {group.get('title')} (title {title:.2f}, artist {artist:.2f}, "
                f"MusicBrainz score {score})"
            )
            urls, sizes = self._cover_art(group["id"])
            return Candidate(urls, match, sizes)
        return None

    def _cover_art(self, group_id: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """The release group's front cover, largest first: from the archive's index when it has
        one, else its fixed ``front-1200``, ``front-500`` and ``front`` addresses."""
        index_url = self.url("coverart", id=group_id)
        response = self._get(index_url)
        images = []
        if response.status_code == 200:
            try:
                images = response.json().get("images") or []
            except ValueError:
                images = []
        front = next(
            (i for i in images if i.get("front") or "Front" in (i.get("types") or [])), None
        )
        if front is None:
            fixed = tuple(f"{index_url}/{name}" for name in COVER_ART_FALLBACK)
            return fixed, COVER_ART_FALLBACK
        choices = [("original", front.get("image"))]
        thumbnails = front.get("thumbnails") or {}
        sizes = {"small": 250, "large": 500}  # the archive's older names for 250 and 500
        by_size = sorted(  # largest first; of two names for one size, the number
            ((sizes.get(k) or int(k), str(k).isdigit(), k, v) for k, v in thumbnails.items()
             if v and (k in sizes or str(k).isdigit())),
            reverse=True,
        )  # fmt: skip
        choices += [(f"thumbnail {name}", url) for _, _, name, url in by_size]
        urls, asked = [], []
        for label, url in choices:
            if url and self.rebase(url, "coverart") not in urls:
                urls.append(self.rebase(url, "coverart"))
                asked.append(label)
        return tuple(urls), tuple(asked)

    # -- downloading ----------------------------------------------------------------------------

    def download(self, candidate: Candidate) -> tuple[Cover | None, str]:
        """The first of the candidate's URLs that gives an image, and what went wrong if none
        (an image the session gave up on included: it is the album's problem, not the run's)."""
        problems = []
        for url, asked in zip(candidate.urls, candidate.size_asked):
            try:
                # A deadline and a size cap (a cover API's own hosts, or the mirrors the user
                # named: local addresses allowed).
                response, body = fetch_file(self.session, url, allow_local=True)
            except DownloadRefused as exc:
                problems.append(f"{exc} for {asked}")
                continue
            except requests.RequestException as exc:
                problems.append(f"{self.session.reason(exc)} for {asked}")
                continue
            if response.status_code != 200:
                problems.append(f"HTTP {response.status_code} for {asked}")
                continue
            try:
                with Image.open(io.BytesIO(body)) as image:
                    width, height, fmt = image.width, image.height, image.format
            except Exception:  # noqa: BLE001 - not an image
                problems.append(f"not an image for {asked}")
                continue
            return Cover(url, asked, body, fmt, width, height), ""
        return None, "; ".join(problems)


# ------------------------------------------------------------------------------------------------
# Fetching a chart
# ------------------------------------------------------------------------------------------------


@dataclass
class FetchResult:
    """What ``fetch_covers`` did."""

    fetched: list[Album] = field(default_factory=list)
    missing: dict[Album, list[str]] = field(default_factory=dict)  # album -> each source's word
    gaps: list[str] = field(default_factory=list)
    served: Counter = field(default_factory=Counter)  # source -> covers it served now
    set_aside: list[str] = field(default_factory=list)  # files in DIR/set-aside/


def parse_sources(text: str) -> tuple[str, ...]:
    """``itunes,musicbrainz,bing`` -> a tuple, each known and named once."""
    names = tuple(dict.fromkeys(n.strip() for n in text.split(",") if n.strip()))
    unknown = [n for n in names if n not in SOURCES]
    if unknown or not names:
        raise UsageError(f"--source: expected a comma list of {', '.join(SOURCES)}, got {text!r}")
    return names


def fetch_covers(
    out: str | Path,
    chart: str | Path | None = None,
    sources: tuple[str, ...] = SOURCES,
    fetcher: CoverFetcher | None = None,
    min_size: int = 300,
) -> FetchResult:
    """Fetch a full-size cover for every album of the chart into ``out``; see the module doc.

    Raises:
        CrawlError: a source cannot be reached (offline).
    """
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    albums, gaps = load_chart(chart)
    fetcher = fetcher or CoverFetcher()
    manifest = Manifest(folder)
    done = {
        (r.get("artist"), r.get("album"))
        for r in read_jsonl(folder / "manifest.jsonl")
        if not r.get("set_aside")
    }
    result = FetchResult(gaps=gaps)
    for album in albums:
        if (album.artist, album.album) in done:
            continue
        said = []
        for source in sources:
            if source == "bing":
                word = _fetch_with_bing(album, folder, manifest, fetcher, min_size)
            else:
                word = _fetch_one(album, source, folder, manifest, fetcher, min_size, result)
            if word == "":
                result.fetched.append(album)
                result.served[source] += 1
                break
            said.append(f"{source}: {word}")
        else:
            result.missing[album] = said
    return result


def _record(album: Album, source: str, name: str, cover: Cover, match: str) -> dict:
    return {
        "file": name,
        "year": album.year,
        "rank": album.rank,
        "artist": album.artist,
        "album": album.album,
        "source": source,
        "url": cover.url,
        "size_asked": cover.size_asked,
        "width": cover.width,
        "height": cover.height,
        "match": match,
        "sha256": hashlib.sha256(cover.data).hexdigest(),
        "bytes": len(cover.data),
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def _fetch_one(
    album: Album,
    source: str,
    folder: Path,
    manifest: Manifest,
    fetcher: CoverFetcher,
    min_size: int,
    result: FetchResult,
) -> str:
    """Try one API source; "" when it served the album's cover, else what went wrong."""
    candidate = fetcher.find(album, source)
    if candidate is None:
        return "no matching album"
    cover, problem = fetcher.download(candidate)
    if cover is None:
        return f"matched {candidate.match}, but no image ({problem})"
    ext = EXTENSIONS.get(cover.format, "img")
    if min(cover.width, cover.height) < min_size:
        # Kept for a person to look at, never used: data prepare skips what is set aside.
        name = f"{SET_ASIDE}/{album.stem}-{source}.{ext}"
        write_bytes(folder / name, cover.data)
        manifest.append({**_record(album, source, name, cover, candidate.match),
                         "set_aside": "too small"})  # fmt: skip
        result.set_aside.append(name)
        return f"{cover.width}x{cover.height} px is under --min-size {min_size} (set aside)"
    name = f"{album.stem}.{ext}"
    write_bytes(folder / name, cover.data)
    manifest.append(_record(album, source, name, cover, candidate.match))
    return ""


def _fetch_with_bing(
    album: Album, folder: Path, manifest: Manifest, fetcher: CoverFetcher, min_size: int
) -> str:
    """The first Bing image of at least ``min_size`` px for "{artist} {album} album cover"."""
    keyword = f"{album.artist} {album.album} album cover"
    before = len(read_jsonl(folder / "manifest.jsonl"))
    found = crawl_pair(
        folder, manifest, "bing", keyword, max_num=1, min_size=min_size,
        engine_url=fetcher.bing_template, session=fetcher.session,
        allow_local=fetcher.allow_local,
    )  # fmt: skip
    records = read_jsonl(folder / "manifest.jsonl")
    if found.new_files == 0 or len(records) == before:
        skipped = ", ".join(f"{reason}: {n}" for reason, n in sorted(found.skipped.items()))
        return "no usable image" + (f" ({skipped})" if skipped else "")
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
        size_asked="thumbnail" if record.get("thumbnail") else "full (murl)",
        match=keyword,
    )
    lines = [json.dumps(r, ensure_ascii=False) for r in records[:-1] + [record]]
    write_text(folder / "manifest.jsonl", "\n".join(lines) + "\n")
    return ""
