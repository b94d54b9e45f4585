"""The crawler for real: icrawler's Bing parser, URL-list crawler and our downloader against a
local HTTP server on 127.0.0.1 serving generated covers, failures and a Bing result page."""

from __future__ import annotations

import hashlib
import io
import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from PIL import Image

from data_tools.crawl import CrawlError, ProvenanceDownloader, crawl, report
from data_tools.synthetic import generate_cover

GOOD = ["/img/0.jpg", "/img/1.jpg", "/img/2.jpg", "/flaky.jpg"]
BAD = ["/missing.jpg", "/slow.jpg", "/page.jpg", "/small.jpg", "/dup.jpg"]


def _jpeg(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


class _Server:
    """Serves covers, a 404, a slow answer, HTML, a tiny image, a duplicate, a flaky 503."""

    def __init__(self) -> None:
        covers = {f"/img/{i}.jpg": _jpeg(generate_cover(i, size=400, seed=5)) for i in range(3)}
        covers["/flaky.jpg"] = _jpeg(generate_cover(9, size=400, seed=5))
        covers["/dup.jpg"] = covers["/img/0.jpg"]
        covers["/small.jpg"] = _jpeg(generate_cover(4, size=100, seed=5))
        self.files = covers
        self.hits: dict[str, int] = {}
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_HEAD(self) -> None:
                self.send_response(200)
                self.end_headers()

            def do_GET(self) -> None:
                path = self.path.split("?")[0]
                server.hits[path] = server.hits.get(path, 0) + 1
                if path == "/bing":
                    body = server.result_page(self.path).encode()
                    return self._send(200, body, "text/html")
                if path == "/slow.jpg":
                    time.sleep(2.5)
                if path == "/flaky.jpg" and server.hits[path] == 1:
                    return self._send(503, b"busy", "text/plain")
                if path == "/page.jpg":
                    return self._send(200, b"<html><body>captcha</body></html>", "text/html")
                if path in server.files:
                    return self._send(200, server.files[path], "image/jpeg")
                self._send(404, b"not found", "text/plain")

            def _send(self, code: int, body: bytes, kind: str) -> None:
                self.send_response(code)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                try:
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.httpd.server_port}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def result_page(self, request: str) -> str:
        """A saved-style Bing result page: div.imgpt > a[m] with "murl" (first page only)."""
        if not re.search(r"first=0(&|$)", request) or "empty=1" in request:
            return "<html><body></body></html>"
        cards = "".join(
            f'<div class="imgpt"><a class="iusc" m=\'{{"murl":"{self.base}{p}",'
            f'"turl":"{self.base}/thumb.jpg"}}\'></a></div>'
            for p in GOOD + BAD
        )
        return f"<html><body><div id='mmComponent_images_1'>{cards}</div></body></html>"


@pytest.fixture
def server():
    srv = _Server()
    yield srv
    srv.httpd.shutdown()


@pytest.fixture(autouse=True)
def fast_backoff(monkeypatch):
    monkeypatch.setattr(ProvenanceDownloader, "backoff", 0.05)


def _crawl(server, out, **kwargs):
    bing = server.base + "/bing?q={keyword}&first={offset}"
    return crawl(
        out,
        engines=("bing",),
        keywords=("kpop album cover",),
        max_num=20,
        min_size=300,
        engine_urls={"bing": bing},
        queue_timeout=0.5,
        request_timeout=1.0,
        **kwargs,
    )


def test_bing_crawl_keeps_good_images_with_provenance_and_counts_failures(server, tmp_path):
    out = tmp_path / "raw"
    (result,) = _crawl(server, out)
    assert result.new_files == len(GOOD)
    assert result.skipped == {
        "HTTP 404": 1,
        "timeout": 1,
        "not an image": 1,
        "smaller than 300 px": 1,
        "same image already stored": 1,
    }
    assert server.hits["/flaky.jpg"] == 2  # a 503 is retried
    assert server.hits["/slow.jpg"] == 3  # timeouts are retried (3 tries)
    records = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    files = sorted(p.name for p in out.iterdir() if p.name != "manifest.jsonl")
    assert sorted(r["file"] for r in records) == files and len(files) == len(GOOD)
    assert {r["url"] for r in records} == {server.base + p for p in GOOD}
    for record in records:
        data = (out / record["file"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == record["sha256"]
        assert re.fullmatch(r"[0-9a-f]{20}\.jpg", record["file"])  # names never come from URLs
        assert (record["engine"], record["keyword"]) == ("bing", "kpop album cover")
        assert (record["width"], record["height"], record["format"]) == (400, 400, "JPEG")
    assert "returned nothing" not in report([result])


def test_recrawl_adds_nothing_twice(server, tmp_path):
    out = tmp_path / "raw"
    _crawl(server, out)
    manifest = (out / "manifest.jsonl").read_text()
    (again,) = _crawl(server, out)
    assert again.new_files == 0
    assert again.skipped["url already crawled"] == len(GOOD)
    assert (out / "manifest.jsonl").read_text() == manifest
    assert "returned nothing: bing: kpop album cover" in report([again])


def test_url_list_crawler_and_a_keyword_that_returns_nothing(server, tmp_path):
    urls = tmp_path / "urls.txt"
    urls.write_text(
        f"# covers found by hand\n{server.base}/img/1.jpg\n{server.base}/missing.jpg\n"
    )
    out = tmp_path / "raw"
    bing_empty = server.base + "/bing?q={keyword}&first={offset}&empty=1"  # a page with no cards
    results = crawl(
        out,
        engines=("bing",),
        keywords=("nothing here",),
        max_num=20,
        min_size=300,
        urls_file=urls,
        engine_urls={"bing": bing_empty},
        queue_timeout=0.5,
        request_timeout=1.0,
    )
    by_engine = {r.engine: r for r in results}
    assert by_engine["bing"].new_files == 0 and by_engine["urls"].new_files == 1
    assert by_engine["urls"].skipped == {"HTTP 404": 1}
    assert "returned nothing: bing: nothing here" in report(results)


def test_offline_is_a_clear_error(tmp_path):
    closed = "http://127.0.0.1:9/bing?q={keyword}&first={offset}"  # the discard port: refused
    with pytest.raises(CrawlError, match="no search engine could be reached"):
        crawl(
            tmp_path / "raw",
            engines=("bing",),
            keywords=("x",),
            engine_urls={"bing": closed},
            request_timeout=1.0,
        )
    assert not (tmp_path / "raw" / "manifest.jsonl").exists()
