"""`albumgan data gaon`: the real client code against local fakes of iTunes and MusicBrainz."""

from __future__ import annotations

import io
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest
from PIL import Image

from data_tools.crawl import CrawlError
from data_tools.gaon import Album, CoverFetcher, fetch_covers, load_chart
from data_tools.synthetic import generate_cover

CHART = """year,rank,artist,album,sales,source,note
2010,1,Super Junior,Bonamana,200193,wiki,
2010,2,Girls' Generation,Oh!,197934,wiki,
2011,,Nobody,Unknown Album,,blog,rank not given
2012,3,,Missing Artist,,blog,a gap in the source
"""


def _jpeg(i: int) -> bytes:
    buffer = io.BytesIO()
    generate_cover(i, size=120, seed=8).save(buffer, "JPEG")
    return buffer.getvalue()


class _FakeApis:
    """iTunes Search (/search) and MusicBrainz (/ws/2/release-group/ + Cover Art Archive)."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict, str]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                query = {k: v[0] for k, v in parse_qs(parts.query).items()}
                fake.requests.append((parts.path, query, self.headers.get("User-Agent", "")))
                if parts.path == "/search":
                    return self._json(fake.itunes(query))
                if parts.path == "/ws/2/release-group/":
                    return self._json(fake.musicbrainz(query))
                if parts.path.startswith("/art/") and parts.path.endswith("/1200x1200bb.jpg"):
                    return self._send(200, _jpeg(int(parts.path.split("/")[2])), "image/jpeg")
                if parts.path == "/bing":
                    murl = f'{{"murl":"{fake.base}/big/4.jpg"}}'
                    card = (
                        f"<div class='imgpt'><a m='{murl}'></a></div>"
                        if query.get("first") == "0" and "Bonamana" in query.get("q", "")
                        else ""
                    )
                    return self._send(
                        200, f"<html><body>{card}</body></html>".encode(), "text/html"
                    )
                if parts.path == "/big/4.jpg":
                    buffer = io.BytesIO()
                    generate_cover(4, size=400, seed=8).save(buffer, "JPEG")
                    return self._send(200, buffer.getvalue(), "image/jpeg")
                if parts.path == "/release-group/rg-1/front-1200":
                    return self._send(200, _jpeg(7), "image/jpeg")
                self._send(404, b"no", "text/plain")

            def _json(self, data: dict) -> None:
                self._send(200, json.dumps(data).encode(), "application/json")

            def _send(self, code: int, body: bytes, kind: str) -> None:
                self.send_response(code)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.httpd.server_port}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def itunes(self, query: dict) -> dict:
        term = query.get("term", "")
        results = []
        if "Bonamana" in term:
            results = [
                {
                    "artistName": "Other Band",
                    "collectionName": "Bonamana Karaoke",
                    "artworkUrl100": f"{self.base}/art/2/100x100bb.jpg",
                },
                {
                    "artistName": "SUPER JUNIOR",
                    "collectionName": "Bonamana - The 4th Album",
                    "artworkUrl100": f"{self.base}/art/1/100x100bb.jpg",
                },
            ]
        return {"resultCount": len(results), "results": results}

    def musicbrainz(self, query: dict) -> dict:
        if "Oh!" in query.get("query", ""):
            return {
                "release-groups": [
                    {
                        "id": "rg-1",
                        "title": "Oh!",
                        "artist-credit": [{"name": "Girls’ Generation"}],
                    }
                ]
            }
        return {"release-groups": []}


@pytest.fixture
def apis():
    fake = _FakeApis()
    yield fake
    fake.httpd.shutdown()


@pytest.fixture
def chart(tmp_path):
    path = tmp_path / "chart.csv"
    path.write_text(CHART, encoding="utf-8")
    return path


def _fetcher(source: str, apis: _FakeApis) -> CoverFetcher:
    urls = {
        "itunes": f"{apis.base}/search",
        "musicbrainz": f"{apis.base}/ws/2/release-group/",
        "coverart": apis.base + "/release-group/{id}/front-1200",
        "bing": apis.base + "/bing?q={keyword}&first={offset}",
    }
    return CoverFetcher(source, urls=urls, intervals={source: 0.0}, timeout=5)


def test_shipped_chart_keeps_its_gaps_visible():
    albums, gaps = load_chart()
    assert len(albums) >= 60 and all(a.artist and a.album for a in albums)
    assert {a.year for a in albums} == set(range(2010, 2020))
    assert any(a.rank is None for a in albums)  # unranked rows stay, unranked


def test_itunes_fetch_picks_the_matching_album_at_1200px(apis, chart, tmp_path):
    out = tmp_path / "gaon"
    fetched, missing, gaps = fetch_covers(out, chart, fetcher=_fetcher("itunes", apis))
    assert [a.album for a in fetched] == ["Bonamana"]
    assert [a.album for a in missing] == ["Oh!", "Unknown Album"]
    assert gaps == ["line 5: missing artist"]
    (record,) = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert record["url"] == f"{apis.base}/art/1/1200x1200bb.jpg"  # not the karaoke hit
    assert record["file"] == "2010-super-junior-bonamana.jpg" and record["source"] == "itunes"
    assert (out / record["file"]).read_bytes() == _jpeg(1)
    searches = [q for path, q, _ in apis.requests if path == "/search"]
    assert all(q["entity"] == "album" and q["country"] == "kr" for q in searches)
    again = fetch_covers(out, chart, fetcher=_fetcher("itunes", apis))
    assert again[0] == []  # a re-run skips what the manifest has


def test_musicbrainz_fetch_uses_cover_art_archive_and_a_real_user_agent(apis, chart, tmp_path):
    out = tmp_path / "gaon"
    fetched, missing, _ = fetch_covers(out, chart, fetcher=_fetcher("musicbrainz", apis))
    assert [a.album for a in fetched] == ["Oh!"]
    assert len(missing) == 2
    with Image.open(out / "2010-girls-generation-oh.jpg") as image:
        assert image.size == (120, 120)
    agents = {agent for _, _, agent in apis.requests}
    assert agents and all(agent.startswith("albumgan/") for agent in agents)


def test_rate_limit_spaces_requests(apis, chart, tmp_path):
    import time

    fetcher = _fetcher("itunes", apis)
    fetcher.limiter.interval = 0.2
    start = time.monotonic()
    fetch_covers(tmp_path / "g", chart, fetcher=fetcher)
    calls = len(apis.requests)
    assert calls >= 4 and time.monotonic() - start >= 0.2 * (calls - 1)


def test_offline_is_a_clear_error(chart, tmp_path):
    fetcher = CoverFetcher(
        "itunes",
        urls={"itunes": "http://127.0.0.1:9/search"},
        intervals={"itunes": 0.0},
        timeout=2,
    )
    with pytest.raises(CrawlError, match="cannot reach 127.0.0.1:9"):
        fetch_covers(tmp_path / "g", chart, fetcher=fetcher)


def test_file_names_cannot_escape_the_folder():
    album = Album(2020, 1, "../../etc", "pass/wd", None, "", "")
    assert "/" not in album.stem and ".." not in album.stem


def test_bing_fallback_names_the_file_after_the_album(apis, chart, tmp_path):
    out = tmp_path / "gaon"
    fetched, missing, _ = fetch_covers(out, chart, fetcher=_fetcher("bing", apis))
    assert [a.album for a in fetched] == ["Bonamana"] and len(missing) == 2
    records = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert len(records) == 1
    record = records[0]
    assert record["file"] == "2010-super-junior-bonamana.jpg" and record["source"] == "bing"
    assert record["url"] == f"{apis.base}/big/4.jpg" and (out / record["file"]).is_file()
    assert sorted(p.name for p in out.iterdir()) == [
        "2010-super-junior-bonamana.jpg",
        "manifest.jsonl",
    ]
