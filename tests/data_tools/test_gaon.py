"""`albumgan data gaon`: the real client code against a local server that answers as the real
services do (iTunes Search, MusicBrainz, the Cover Art Archive, Bing), under their own paths
behind mirror bases (``--source-url``)."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from PIL import Image

from albumgan.data_tools.crawl import CrawlError
from albumgan.data_tools.gaon import (
    Album,
    ChartError,
    CoverFetcher,
    fetch_covers,
    itunes_full_size,
    load_chart,
    normalise,
    similarity,
)
from albumgan.data_tools.prepare import list_inputs
from albumgan.data_tools.synthetic import generate_cover

ROOT = Path(__file__).resolve().parents[2]
CHART = """year,rank,artist,album,sales,source,note,artist_alias
2019,1,BTS,MAP OF THE SOUL : PERSONA,,wiki,,방탄소년단
2010,2,Girls' Generation,Oh!,,wiki,,소녀시대|SNSD
2012,3,Big Bang,Alive,,wiki,,
2013,4,EXO,XOXO (Deluxe Edition),,wiki,,엑소
2015,5,Infinite,Season 2,,wiki,,
2016,6,Seventeen,"Teen, Age",,wiki,,
2017,7,Nobody,Nothing Here,,wiki,,
2018,8,,Missing Artist,,wiki,a gap in the source,
"""
MBID_ALIVE = "3c5e3f3e-1f1a-4a8e-9c1e-000000000001"
MBID_XOXO = "3c5e3f3e-1f1a-4a8e-9c1e-000000000002"
MBID_SEASON2 = "3c5e3f3e-1f1a-4a8e-9c1e-000000000003"
RELEASE = "8a1c1a9e-0000-4000-8000-00000000abcd"


def _jpeg(seed: int, size: int) -> bytes:
    buffer = io.BytesIO()
    generate_cover(seed, size=size, seed=8).save(buffer, "JPEG")
    return buffer.getvalue()


class _Services:
    """iTunes under /it, MusicBrainz under /mb, the Cover Art Archive under /caa, Bing at /bing;
    artwork under /mzstatic. Answers are shaped like recorded real ones."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict, str]] = []
        services = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                query = {k: v[0] for k, v in parse_qs(parts.query).items()}
                services.requests.append((parts.path, query, self.headers.get("User-Agent", "")))
                answer = services.answer(parts.path, query)
                if answer is None:
                    return self._send(404, b'{"error": "Not Found"}', "application/json")
                body, kind = answer
                self._send(200, body, kind)

            def _send(self, code: int, body: bytes, kind: str) -> None:
                self.send_response(code)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.httpd.server_port}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def urls(self) -> dict[str, str]:
        return {
            "itunes": f"{self.base}/it",
            "musicbrainz": f"{self.base}/mb",
            "coverart": f"{self.base}/caa",
            "bing": self.base + "/bing?q={keyword}&first={offset}",
        }

    # -- answers --------------------------------------------------------------------------------

    def answer(self, path: str, query: dict) -> tuple[bytes, str] | None:
        jpeg, js = "image/jpeg", "application/json"
        if path == "/it/search":
            return json.dumps(self.itunes(query.get("term", ""))).encode(), "text/javascript"
        if path == "/mb/ws/2/release-group/":
            return json.dumps(
                self.musicbrainz(query.get("query", ""))
            ).encode(), "application/json"
        if path == f"/caa/release-group/{MBID_ALIVE}":  # an index with no 1200 thumbnail
            return json.dumps(self.cover_art_index()).encode(), js
        if path == f"/caa/release/{RELEASE}/9001-500.jpg":  # the original itself is gone (404)
            return _jpeg(3, 500), jpeg
        if path == f"/caa/release-group/{MBID_XOXO}/front-500":  # no index, no front-1200
            return _jpeg(4, 500), jpeg
        if path == f"/caa/release-group/{MBID_SEASON2}/front":  # only the original
            return _jpeg(7, 350), jpeg
        art = {
            "/mzstatic/image/thumb/Music113/v4/5d/b2/bts/source/1200x1200bb.jpg": (1, 1200),
            "/mzstatic/us/r30/Music/4a/2f/0c/mzi.oh.1200x1200-75.jpg": (2, 600),
            "/mzstatic/image/thumb/Music/xoxo/source/1200x1200bb.jpg": (5, 100),  # 100x100 only
            "/big/seventeen": (6, 400),
        }
        if path in art:
            return _jpeg(*art[path]), jpeg
        if path == "/bing" and query.get("first") == "0":
            return self.bing_page(query.get("q", "")).encode(), "text/html"
        return None

    def itunes(self, term: str) -> dict:
        def hit(artist: str, album: str, art: str) -> dict:
            return {
                "wrapperType": "collection",
                "collectionType": "Album",
                "artistName": artist,
                "collectionName": album,
                "artworkUrl60": art.replace("100x100", "60x60"),
                "artworkUrl100": art,
                "country": "KOR",
                "currency": "KRW",
                "primaryGenreName": "K-Pop",
            }

        art = f"{self.base}/mzstatic"
        results = []
        if "PERSONA" in term:  # Hangul artist, "- EP" title, today's artwork form
            results = [
                hit("방탄소년단", "MAP OF THE SOUL : PERSONA (Karaoke)", f"{art}/k/100x100bb.jpg"),
                hit(
                    "방탄소년단",
                    "MAP OF THE SOUL : PERSONA - EP",
                    f"{art}/image/thumb/Music113/v4/5d/b2/bts/source/100x100bb.jpg",
                ),
            ]
        elif "Oh!" in term:  # the older artwork form
            results = [
                hit("소녀시대", "Oh!", f"{art}/us/r30/Music/4a/2f/0c/mzi.oh.100x100-75.jpg")
            ]
        elif "Alive" in term:  # Hangul only and no alias in the chart: not ours to take
            results = [hit("빅뱅", "ALIVE", f"{art}/image/thumb/Music/alive/source/100x100bb.jpg")]
        elif "XOXO" in term:  # the store has only a thumbnail of it
            results = [hit("엑소", "XOXO", f"{art}/image/thumb/Music/xoxo/source/100x100bb.jpg")]
        return {"resultCount": len(results), "results": results}

    def musicbrainz(self, query: str) -> dict:
        def group(mbid: str, title: str, credit: dict, score: int) -> dict:
            return {
                "id": mbid,
                "score": score,
                "count": 2,
                "title": title,
                "first-release-date": "2012-02-29",
                "primary-type": "Album",
                "artist-credit": [credit],
            }

        groups = []
        if '"Alive"' in query:  # a Hangul credit whose artist has a Latin alias; a low score
            bigbang = {
                "id": "artist-bigbang",
                "name": "빅뱅",
                "sort-name": "빅뱅",
                "aliases": [{"name": "BIGBANG", "sort-name": "BIGBANG", "type": "Artist name"}],
            }
            groups = [group(MBID_ALIVE, "ALIVE", {"name": "빅뱅", "artist": bigbang}, 70)]
        elif "XOXO" in query:
            exo = {"id": "artist-exo", "name": "엑소", "sort-name": "EXO"}
            groups = [group(MBID_XOXO, "XOXO", {"name": "엑소", "artist": exo}, 100)]
        elif "Season 2" in query:  # Hangul only, no alias anywhere: MusicBrainz's score vouches
            infinite = {"id": "artist-infinite", "name": "인피니트", "sort-name": "인피니트"}
            credit = {"name": "인피니트", "artist": infinite}
            groups = [group(MBID_SEASON2, "Season 2", credit, 95)]
        return {"created": "2026-11-26T00:00:00Z", "count": len(groups), "offset": 0,
                "release-groups": groups}  # fmt: skip

    def cover_art_index(self) -> dict:
        original = f"http://coverartarchive.org/release/{RELEASE}/9001"
        return {
            "images": [
                {
                    "approved": True,
                    "back": True,
                    "front": False,
                    "id": 9000,
                    "image": f"http://coverartarchive.org/release/{RELEASE}/9000.jpg",
                    "thumbnails": {},
                    "types": ["Back"],
                },
                {
                    "approved": True,
                    "back": False,
                    "front": True,
                    "id": 9001,
                    "image": f"{original}.jpg",
                    "thumbnails": {
                        "250": f"{original}-250.jpg",
                        "500": f"{original}-500.jpg",
                        "small": f"{original}-250.jpg",
                        "large": f"{original}-500.jpg",
                    },
                    "types": ["Front"],
                },
            ],
            "release": f"https://musicbrainz.org/release/{RELEASE}",
        }

    def bing_page(self, q: str) -> str:
        if "Seventeen" not in q:
            return "<html><body><div id='mmComponent_images_1'></div></body></html>"
        m = json.dumps(
            {"murl": f"{self.base}/big/seventeen", "turl": "https://tse1.mm.bing.net/th"}
        )
        escaped = m.replace("&", "&amp;").replace('"', "&quot;")
        return f'<html><body><a class="iusc" m="{escaped}" href="#">x</a></body></html>'


@pytest.fixture
def services():
    fake = _Services()
    yield fake
    fake.httpd.shutdown()


@pytest.fixture
def chart(tmp_path):
    path = tmp_path / "chart.csv"
    path.write_text(CHART, encoding="utf-8")
    return path


def _fetcher(services: _Services, **intervals: float) -> CoverFetcher:
    no_waiting = {name: 0.0 for name in ("itunes", "musicbrainz", "coverart", "bing")}
    return CoverFetcher(
        urls=services.urls(),
        intervals={**no_waiting, **intervals},
        timeout=5,
        allow_local=True,  # Bing's results here are on 127.0.0.1
    )


def _manifest(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "manifest.jsonl").read_text().splitlines()]


def test_names_fold_width_punctuation_and_edition_suffixes():
    assert normalise("ＢＴＳ") == normalise("BTS") == "bts"  # full-width letters
    assert similarity("XOXO (Deluxe Edition)", "XOXO") == 1.0
    assert similarity("MAP OF THE SOUL : PERSONA", "MAP OF THE SOUL: PERSONA - EP") == 1.0
    assert similarity("GD&TOP", "GD × TOP") == 1.0 and similarity("EXO·CBX", "EXO-CBX") == 1.0
    assert similarity("Big Bang", "빅뱅") < 0.6  # two scripts: only an alias can tell


def test_itunes_artwork_urls_of_both_forms_ask_for_1200px():
    new = "https://is1-ssl.mzstatic.com/image/thumb/Music113/v4/5d/b2/x/source/100x100bb.jpg"
    old = "http://a1.mzstatic.com/us/r30/Music/4a/2f/0c/mzi.abcdefgh.100x100-75.jpg"
    assert itunes_full_size(new).endswith("/source/1200x1200bb.jpg")
    assert itunes_full_size(old).endswith("/mzi.abcdefgh.1200x1200-75.jpg")
    assert itunes_full_size("https://example.com/cover.jpg") is None


def test_sources_chained_per_album_full_size_or_set_aside(services, chart, tmp_path):
    out = tmp_path / "gaon"
    result = fetch_covers(out, chart, fetcher=_fetcher(services), min_size=300)
    records = {r["album"]: r for r in _manifest(out) if not r.get("set_aside")}
    # iTunes: Hangul artist matched through the alias, "- EP" and the karaoke hit told apart.
    bts = records["MAP OF THE SOUL : PERSONA"]
    assert bts["source"] == "itunes" and bts["size_asked"] == "1200x1200"
    assert bts["url"].endswith("/source/1200x1200bb.jpg") and bts["width"] == 1200
    # iTunes, the older artwork form.
    oh = records["Oh!"]
    assert oh["url"].endswith("/mzi.oh.1200x1200-75.jpg") and (oh["width"], oh["height"]) == (
        600,
        600,
    )
    # Not iTunes (Hangul only, no alias): MusicBrainz by its sort name; the archive's index has
    # no 1200 thumbnail and its original is gone: the 500 px thumbnail, from the mirror.
    alive = records["Alive"]
    assert alive["source"] == "musicbrainz" and alive["size_asked"] == "thumbnail 500"
    assert alive["url"] == f"{services.base}/caa/release/{RELEASE}/9001-500.jpg"
    # iTunes had only 100 px: set aside, never used; MusicBrainz vouched by its score, and
    # front-1200 -> 404 -> front-500.
    xoxo = records["XOXO (Deluxe Edition)"]
    assert xoxo["source"] == "musicbrainz" and xoxo["size_asked"] == "front-500"
    assert xoxo["url"] == f"{services.base}/caa/release-group/{MBID_XOXO}/front-500"
    (aside,) = [r for r in _manifest(out) if r.get("set_aside")]
    assert aside["set_aside"] == "too small" and (aside["width"], aside["height"]) == (100, 100)
    assert aside["file"] == "set-aside/2013-exo-xoxo-deluxe-edition-itunes.jpg"
    assert (out / aside["file"]).is_file() and result.set_aside == [aside["file"]]
    # MusicBrainz's score vouches for a Hangul-only credit; the archive has only `front`.
    season2 = records["Season 2"]
    assert season2["source"] == "musicbrainz" and season2["size_asked"] == "front"
    # Bing: a murl without an extension.
    teen = records["Teen, Age"]
    assert teen["source"] == "bing" and teen["url"] == f"{services.base}/big/seventeen"
    assert teen["file"] == "2016-seventeen-teen-age.jpg"
    # Nobody: every source said why not.
    (nobody,) = result.missing
    assert nobody.artist == "Nobody" and [w.split(":")[0] for w in result.missing[nobody]] == [
        "itunes",
        "musicbrainz",
        "bing",
    ]
    assert result.served == {"itunes": 2, "musicbrainz": 3, "bing": 1}
    assert result.gaps == ["line 9: missing artist"]
    for record in records.values():  # every file is where its line says, at its size
        with Image.open(out / record["file"]) as image:
            assert image.size == (record["width"], record["height"])
            assert min(image.size) >= 300
    # data prepare never sees what was set aside
    assert out / aside["file"] not in list_inputs(out, tmp_path / "prepared")
    assert len(list_inputs(out, tmp_path / "prepared")) == 6
    # a re-run asks nothing more of the services that served, and skips what it has
    before = len(services.requests)
    again = fetch_covers(out, chart, fetcher=_fetcher(services), min_size=300)
    assert again.fetched == [] and list(again.missing) == [nobody]
    assert all("Nothing" in str(q) for _, q, _ in services.requests[before:] if q)


def test_musicbrainz_asks_with_a_real_user_agent(services, chart, tmp_path):
    fetch_covers(tmp_path / "g", chart, ("musicbrainz",), _fetcher(services), min_size=300)
    agents = {agent for path, _, agent in services.requests if path.startswith(("/mb", "/caa"))}
    assert agents and all(agent.startswith("albumgan/") for agent in agents)


def test_the_command_end_to_end_through_mirror_urls(services, chart, tmp_path):
    out = tmp_path / "gaon"
    args = [sys.executable, "-m", "albumgan.experiments.cli", "data", "gaon", "--out", str(out),
            "--chart", str(chart), "--source", "itunes,musicbrainz"]  # fmt: skip
    for name, url in services.urls().items():
        args += ["--source-url", f"{name}={url}"]
    proc = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "fetched 5 covers" in proc.stdout and "(itunes 2, musicbrainz 3)" in proc.stdout
    assert "set aside 1 covers under --min-size 300 px" in proc.stdout
    assert "no source could serve 2 albums:" in proc.stdout
    assert "itunes: no matching album; musicbrainz: no matching album" in proc.stdout
    bad = subprocess.run(
        [*args[:6], str(tmp_path / "x"), "--source", "itunes,spotify"],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert bad.returncode == 2 and "--source: expected a comma list" in bad.stderr


def test_rate_limit_spaces_requests(services, chart, tmp_path):
    fetcher = _fetcher(services, itunes=0.2)  # every service is on the one local host
    start = time.monotonic()
    fetch_covers(tmp_path / "g", chart, ("itunes",), fetcher, min_size=300)
    calls = len([p for p, _, _ in services.requests if p == "/it/search"])
    assert calls >= 4 and time.monotonic() - start >= 0.2 * (calls - 1)


def test_shipped_chart_keeps_its_gaps_visible_and_knows_hangul_names():
    albums, gaps = load_chart()
    assert len(albums) >= 60 and all(a.artist and a.album for a in albums)
    assert {a.year for a in albums} == set(range(2010, 2020))
    assert any(a.rank is None for a in albums)  # unranked rows stay, unranked
    bts = next(a for a in albums if a.artist == "BTS")
    assert "방탄소년단" in bts.aliases


def test_offline_is_a_clear_error(chart, tmp_path):
    fetcher = CoverFetcher(urls={"itunes": "http://127.0.0.1:9"}, intervals={"itunes": 0.0})
    with pytest.raises(CrawlError, match="cannot reach 127.0.0.1:9"):
        fetch_covers(tmp_path / "g", chart, ("itunes",), fetcher)


def test_file_names_cannot_escape_the_folder():
    album = Album(2020, 1, "../../etc", "pass/wd", None, "", "")
    assert "/" not in album.stem and ".." not in album.stem


def test_a_chart_saved_by_a_spreadsheet_reads_the_same(tmp_path):
    """A UTF-8 byte-order mark and ``;`` separators (what spreadsheet programs write), or tabs."""
    plain, plain_gaps = load_chart(_write_chart(tmp_path / "plain.csv", CHART))
    rows = list(csv.reader(io.StringIO(CHART)))
    for name, delimiter in (("semicolons.csv", ";"), ("tabs.tsv", "\t")):
        text = io.StringIO()
        csv.writer(text, delimiter=delimiter).writerows(rows)
        path = tmp_path / name
        path.write_bytes(b"\xef\xbb\xbf" + text.getvalue().encode("utf-8"))
        albums, gaps = load_chart(path)
        assert albums == plain and gaps == plain_gaps and len(albums) == 7


def test_a_chart_without_a_needed_column_is_one_clear_error(tmp_path):
    path = _write_chart(tmp_path / "chart.csv", "year,rank,band,record\n2019,1,BTS,Persona\n")
    with pytest.raises(ChartError, match="no artist, album column .*header has year, rank, band"):
        load_chart(path)
    proc = subprocess.run(
        [sys.executable, "-m", "albumgan.experiments.cli", "data", "gaon", "--out",
         str(tmp_path / "out"), "--chart", str(path)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 2 and proc.stderr.startswith("error: --chart"), proc.stderr
    assert len(proc.stderr.splitlines()) == 1


def test_albums_whose_names_fold_to_one_file_name_get_their_own_files(tmp_path):
    chart = "year,artist,album\n2019,EXO,Obsession\n2019,EXO,Obsession 🎉\n2019,EXO!,Obsession\n"
    albums, _ = load_chart(_write_chart(tmp_path / "c.csv", chart))
    assert [a.stem for a in albums] == [
        "2019-exo-obsession", "2019-exo-obsession-2", "2019-exo-obsession-3",
    ]  # fmt: skip


def _write_chart(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path
